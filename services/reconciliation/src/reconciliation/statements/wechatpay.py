"""The WeChat Pay-style trade bill (交易账单, bill_type ALL): UTF-8 CSV whose every field is
prefixed with a backtick (so spreadsheets keep long numbers as text), a summary header and
summary row at the end.

    交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,...
    `2026-11-24 10:00:00,`wx0000,`1900000109,`0,`,`4200...,`pay_...,`o...,`NATIVE,`SUCCESS,...
    总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额
    `12,`1000.00,`100.00,`0.00,`5.40,`1000.00,`100.00

A payment line has 交易状态 SUCCESS; a refund line REFUND, with 微信退款单号, 商户退款单号
(our refund id), 退款金额 and 退款状态 SUCCESS, and 应结订单金额 still showing the order's
amount. 手续费 is positive on a payment, negative (returned) on a refund. Amounts are yuan,
times China time. Totals: 总交易单数 counts every line; 应结订单总金额 and 订单总金额 sum the
payment lines; 退款总金额 and 申请退款总金额 the refund lines; 手续费总金额 the signed fees.
"""

from __future__ import annotations

import csv
import io
from datetime import date

from paykit.money import Money

from reconciliation.statements.base import (
    PAYMENT,
    REFUND,
    LineReader,
    ParsedStatement,
    StatementError,
    check_header,
    check_total,
    decode,
    digest,
)

FORMAT = "wechatpay-trade-bill"
HEADER = (
    "交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识",
    "交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额", "微信退款单号",
    "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态", "商品名称", "商户数据包",
    "手续费", "费率", "订单金额", "申请退款金额", "费率备注",
)  # fmt: skip
SUMMARY_HEADER = (
    "总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额",
    "申请退款总金额",
)  # fmt: skip
STATES = {"SUCCESS": PAYMENT, "REFUND": REFUND}


def _fields(filename: str, line_no: int, line: str, width: int) -> list[str]:
    row = next(csv.reader(io.StringIO(line)))
    if len(row) != width:
        raise StatementError(filename, f"has {len(row)} fields, expected {width}", line_no)
    values = []
    for position, value in enumerate(row, start=1):
        if not value.startswith("`"):
            raise StatementError(filename, f"field {position} does not start with a backtick", line_no)
        values.append(value[1:])
    return values


def parse(content: bytes, filename: str, channel: str, day: date) -> ParsedStatement:
    text = decode(content.removeprefix(b"\xef\xbb\xbf"), "utf-8", filename)
    lines = text.splitlines()
    if not lines:
        raise StatementError(filename, "is empty", 1)
    check_header(filename, 1, next(csv.reader([lines[0]])), HEADER)
    try:
        summary_at = lines.index(",".join(SUMMARY_HEADER))
    except ValueError:
        raise StatementError(filename, "truncated: no summary header (总交易单数,...)", len(lines)) from None
    if summary_at + 2 != len(lines):
        raise StatementError(
            filename, "the summary header must be followed by exactly one summary row", summary_at + 1
        )
    parsed = ParsedStatement(FORMAT, channel, day, filename, digest(content), account="")
    sums = {"payments": 0, "refunds": 0, "fees": 0, "ordered": 0, "asked": 0}
    for index in range(1, summary_at):
        values = _fields(filename, index + 1, lines[index], len(HEADER))
        reader = LineReader(filename, index + 1, dict(zip(HEADER, values, strict=True)))
        kind = reader.one_of("交易状态", STATES)
        currency = reader.one_of("货币种类", {"CNY": "CNY"})
        merchant = reader.text("商户号")
        if parsed.account and merchant != parsed.account:
            raise reader.fail("商户号", f"{merchant} differs from {parsed.account} on earlier lines")
        parsed.account = merchant
        fee = reader.money("手续费", currency, negative=True)
        sums["fees"] += fee.minor
        if kind == PAYMENT:
            amount = reader.money("应结订单金额", currency)
            sums["payments"] += amount.minor
            sums["ordered"] += reader.money("订单金额", currency).minor
            txn, our_id = reader.text("微信订单号"), reader.text("商户订单号")
        else:
            amount = reader.money("退款金额", currency)
            reader.one_of("退款状态", {"SUCCESS": "SUCCESS"})
            sums["refunds"] += amount.minor
            sums["asked"] += reader.money("申请退款金额", currency).minor
            txn, our_id = reader.text("微信退款单号"), reader.text("商户退款单号")
        parsed.add(
            channel=channel,
            business_day=day,
            line_no=index + 1,
            kind=kind,
            channel_txn_id=txn,
            our_id=our_id,
            reference=reader.text("商户订单号"),
            batch_id=None,
            amount_minor=amount.minor,
            currency=currency,
            fee_minor=abs(fee.minor),
            status="SUCCEEDED",
            occurred_at=reader.timestamp("交易时间"),
        )
    _check_summary(filename, summary_at + 2, lines[summary_at + 1], parsed.line_count, sums)
    return parsed


def _check_summary(filename: str, line_no: int, line: str, count: int, sums: dict[str, int]) -> None:
    values = _fields(filename, line_no, line, len(SUMMARY_HEADER))
    reader = LineReader(filename, line_no, dict(zip(SUMMARY_HEADER, values, strict=True)))
    stated_count = reader.text("总交易单数")
    if not stated_count.isdigit():
        raise reader.fail("总交易单数", f"{stated_count!r} is not a count")
    check_total(filename, line_no, "总交易单数", int(stated_count), count)
    for column, key in (
        ("应结订单总金额", "payments"),
        ("退款总金额", "refunds"),
        ("订单总金额", "ordered"),
        ("申请退款总金额", "asked"),
    ):
        check_total(filename, line_no, column, reader.money(column, "CNY").minor, sums[key], "CNY")
    fees: Money = reader.money("手续费总金额", "CNY", negative=True)
    check_total(filename, line_no, "手续费总金额", fees.minor, sums["fees"], "CNY")
