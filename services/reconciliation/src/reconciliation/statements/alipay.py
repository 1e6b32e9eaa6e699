"""The Alipay-style trade bill (业务明细): GBK text, `#` comment lines around a CSV table.

    #支付宝业务明细查询
    #账号：[<account>]
    #起始日期：[2026年11月24日 00:00:00]   终止日期：[2026年11月25日 00:00:00]
    #-----------------------------------------业务明细列表----------------------------------------
    <HEADER: the 25 columns below, comma separated>
    <one line per payment (业务类型 交易) or refund (退款)>
    #-----------------------------------------业务明细列表结束------------------------------------
    #交易合计：<n>笔，退款合计：<m>笔，订单金额（元）：<sum>，商家实收（元）：<sum>，服务费（元）：<sum>
    #导出时间：[2026年11月25日 09:15:00]

Amounts are yuan with two decimals; a refund line's amounts are negative, and so is the fee
(服务费) the channel charges on a payment (a refund's returned fee is positive). Times are
China time. 商户订单号 is our payment id, 退款批次号/请求号 our refund id, 支付宝交易号
the channel's trade number (the same on a payment and its refunds). Fields may carry
trailing tabs or spaces, which are not part of the value.
"""

from __future__ import annotations

import csv
import io
import re
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

FORMAT = "alipay-trade-bill"
ENCODING = "gbk"
TITLE = "#支付宝业务明细查询"
DETAILS_START = "业务明细列表-"
DETAILS_END = "业务明细列表结束"
HEADER = (
    "支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号", "门店名称",
    "操作员", "终端号", "对方账户", "订单金额（元）", "商家实收（元）", "支付宝红包（元）", "集分宝（元）",
    "支付宝优惠（元）", "商家优惠（元）", "券核销金额（元）", "券名称", "商家红包消费金额（元）",
    "卡消费金额（元）", "退款批次号/请求号", "服务费（元）", "分润（元）", "备注",
)  # fmt: skip
KINDS = {"交易": PAYMENT, "退款": REFUND}
_ACCOUNT = re.compile(r"#账号：\[(.+)\]")
_PERIOD = re.compile(
    r"#起始日期：\[(\d{4})年(\d{2})月(\d{2})日 00:00:00\]\s+"
    r"终止日期：\[(\d{4})年(\d{2})月(\d{2})日 00:00:00\]"
)
_SUMMARY = re.compile(
    r"#交易合计：(\d+)笔，退款合计：(\d+)笔，订单金额（元）：(-?[0-9.]+)，"
    r"商家实收（元）：(-?[0-9.]+)，服务费（元）：(-?[0-9.]+)"
)


def parse(content: bytes, filename: str, channel: str, day: date) -> ParsedStatement:
    if content.startswith(TITLE.encode("utf-8")):
        raise StatementError(filename, f"is UTF-8; an Alipay trade bill is {ENCODING.upper()}", 1)
    text = decode(content, ENCODING, filename)
    lines = text.splitlines()
    if not lines or lines[0].strip() != TITLE:
        raise StatementError(filename, f"does not start with {TITLE} (not an Alipay trade bill)", 1)
    account = _header_value(lines, 1, _ACCOUNT, filename, "#账号：[...]").group(1)
    period = _header_value(lines, 2, _PERIOD, filename, "#起始日期：[...] 终止日期：[...]")
    start = date(int(period.group(1)), int(period.group(2)), int(period.group(3)))
    if start != day:
        raise StatementError(filename, f"is the bill of {start}, not of {day}", 3)
    if len(lines) < 4 or DETAILS_START not in lines[3]:
        raise StatementError(filename, "the details list does not start here", 4)
    if len(lines) < 5:
        raise StatementError(filename, "truncated: no header line", 5)
    check_header(filename, 5, [c.strip() for c in next(csv.reader([lines[4]]))], HEADER)
    parsed = ParsedStatement(FORMAT, channel, day, filename, digest(content), account)
    totals: list[tuple[int, int, int]] = []
    end = _read_details(lines, parsed, totals)
    _check_summary(lines, end, parsed, totals)
    return parsed


def _header_value(
    lines: list[str], index: int, pattern: re.Pattern[str], filename: str, shape: str
) -> re.Match[str]:
    found = pattern.fullmatch(lines[index].strip()) if len(lines) > index else None
    if found is None:
        raise StatementError(filename, f"expected {shape}", index + 1)
    return found


def _read_details(lines: list[str], parsed: ParsedStatement, totals: list[tuple[int, int, int]]) -> int:
    """Reads data lines up to the end marker, their signed (amount, received, fee) into
    `totals`; returns the marker's index."""
    filename = parsed.filename
    for index in range(5, len(lines)):
        line = lines[index]
        if line.startswith("#"):
            if DETAILS_END not in line:
                raise StatementError(filename, "a comment line inside the details list", index + 1)
            return index
        row = next(csv.reader(io.StringIO(line)))
        if len(row) != len(HEADER):
            raise StatementError(filename, f"has {len(row)} fields, the header has {len(HEADER)}", index + 1)
        reader = LineReader(filename, index + 1, {h: v.strip() for h, v in zip(HEADER, row, strict=True)})
        kind = reader.one_of("业务类型", KINDS)
        amount = reader.money("订单金额（元）", "CNY", negative=True)
        received = reader.money("商家实收（元）", "CNY", negative=True)
        fee = reader.money("服务费（元）", "CNY", negative=True)
        if (kind == PAYMENT) != amount.is_positive:
            raise reader.fail("订单金额（元）", f"a {kind.lower()} line with amount {amount.format()}")
        refund_id = reader.text("退款批次号/请求号", required=kind == REFUND)
        parsed.add(
            channel=parsed.channel,
            business_day=parsed.business_day,
            line_no=index + 1,
            kind=kind,
            channel_txn_id=reader.text("支付宝交易号") if kind == PAYMENT else "",
            our_id=reader.text("商户订单号") if kind == PAYMENT else refund_id,
            reference=reader.text("商户订单号"),
            batch_id=None,
            amount_minor=abs(amount.minor),
            currency="CNY",
            fee_minor=abs(fee.minor),
            status="SUCCEEDED",
            occurred_at=reader.timestamp("完成时间"),
        )
        totals.append((amount.minor, received.minor, fee.minor))
    raise StatementError(filename, "truncated: the details list has no end line", len(lines))


def _check_summary(
    lines: list[str], end: int, parsed: ParsedStatement, totals: list[tuple[int, int, int]]
) -> None:
    filename = parsed.filename
    summary_at = end + 1
    found = _SUMMARY.fullmatch(lines[summary_at].strip()) if len(lines) > summary_at else None
    if found is None:
        raise StatementError(filename, "truncated or malformed: no #交易合计 summary line", summary_at + 1)
    kinds = parsed.columns["kind"]
    stated = {
        "交易合计": int(found.group(1)),
        "退款合计": int(found.group(2)),
        "订单金额": _yuan(found.group(3), filename, summary_at + 1),
        "商家实收": _yuan(found.group(4), filename, summary_at + 1),
        "服务费": _yuan(found.group(5), filename, summary_at + 1),
    }
    counted = {
        "交易合计": kinds.count(PAYMENT),
        "退款合计": kinds.count(REFUND),
        "订单金额": sum(t[0] for t in totals),
        "商家实收": sum(t[1] for t in totals),
        "服务费": sum(t[2] for t in totals),
    }
    for what, value in stated.items():
        currency = None if what.endswith("合计") else "CNY"
        check_total(filename, summary_at + 1, what, value, counted[what], currency)
    exported_at = summary_at + 1
    if len(lines) <= exported_at or not lines[exported_at].startswith("#导出时间："):
        raise StatementError(filename, "truncated: no #导出时间 line after the summary", exported_at + 1)


def _yuan(text: str, filename: str, line: int) -> int:
    try:
        return Money.parse(text, "CNY", allow_negative=True).minor
    except ValueError as exc:
        raise StatementError(filename, f"summary amount: {exc}", line) from None
