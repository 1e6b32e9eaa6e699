# ruff: noqa: RUF001
# (An Alipay trade bill is Chinese text: its full-width punctuation is the format.)
"""The Alipay trade bill (业务明细) of one account and one Beijing day, as the bill link serves it.

Exactly the format services/reconciliation/src/reconciliation/statements/alipay.py reads: GBK
text, ``#`` lines around a CSV table of the 25 columns of HEADER, one line per payment
(业务类型 交易) paid that day and per refund (退款) that succeeded that day, in Beijing time,
then the end marker, the summary (counts; sums of 订单金额, 商家实收, 服务费) and 导出时间.
A refund's amounts are negative; the service fee (服务费) is SERVICE_FEE_BPS of a payment,
negative, and the same rate of a refund returned, positive. 支付宝交易号 and 商户订单号 carry
a trailing tab, as Alipay writes them (so spreadsheets keep the digits); readers strip it.

Real Alipay zips the CSV; the sandbox serves the CSV itself, which is what reconciliation
parses. Lines the operator planted for the day (StatementExtra, POST
/v1/admin/statement-extras) are listed with the real ones, in time order.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final

from paykit.money import Money, Rounding, allocate_fee

from channel_simulator.accounts import (
    MerchantAccount,
    RefundStatus,
    StatementExtra,
    StatementLineKind,
    Trade,
)
from channel_simulator.protocols.alipay import methods, wire

ENCODING: Final = "gbk"
TITLE: Final = "#支付宝业务明细查询"
DETAILS_START: Final = f"#{'-' * 41}业务明细列表{'-' * 40}"
DETAILS_END: Final = f"#{'-' * 41}业务明细列表结束{'-' * 36}"
HEADER: Final = (
    "支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号", "门店名称",
    "操作员", "终端号", "对方账户", "订单金额（元）", "商家实收（元）", "支付宝红包（元）", "集分宝（元）",
    "支付宝优惠（元）", "商家优惠（元）", "券核销金额（元）", "券名称", "商家红包消费金额（元）",
    "卡消费金额（元）", "退款批次号/请求号", "服务费（元）", "分润（元）", "备注",
)  # fmt: skip
PAYMENT: Final = "交易"
REFUND: Final = "退款"
# Alipay's standard rate for face-to-face payment (当面付): 0.6%, to the fen, halves up.
SERVICE_FEE_BPS: Final = 60
ZERO: Final = "0.00"
# A planted line without a time is listed at noon of its day.
PLANTED_AT: Final = time(12, 0)


@dataclass(frozen=True)
class BillLine:
    trade_no: str
    out_trade_no: str
    kind: str  # PAYMENT or REFUND
    subject: str
    created_at: datetime
    finished_at: datetime
    # Signed as the bill shows them: a refund's amount is negative, a payment's fee too.
    amount: Money
    fee: Money
    out_request_no: str = ""

    def row(self) -> list[str]:
        amount = self.amount.format()
        return [
            f"{_gbk_safe(self.trade_no)}\t", f"{_gbk_safe(self.out_trade_no)}\t", self.kind,
            _gbk_safe(self.subject), wire.beijing_time(self.created_at), wire.beijing_time(self.finished_at),
            "", "", "", "", methods.BUYER_LOGON_ID, amount, amount, ZERO, ZERO, ZERO, ZERO, ZERO, "", ZERO,
            ZERO, _gbk_safe(self.out_request_no), self.fee.format(), ZERO, "",
        ]  # fmt: skip


def _gbk_safe(text: str) -> str:
    """A merchant's text as the GBK file can carry it: one line, unknown characters as '?'."""
    one_line = " ".join(text.split())
    return one_line.encode(ENCODING, errors="replace").decode(ENCODING)


def _fee(amount: Money) -> Money:
    return allocate_fee(amount, SERVICE_FEE_BPS, Rounding.HALF_UP)


def _trade_lines(merchant: MerchantAccount, trade: Trade, day: date) -> Iterator[BillLine]:
    if trade.amount is None:
        return
    paid_at = trade.paid_at
    if paid_at is not None and wire.beijing_day(paid_at) == day:
        yield BillLine(
            trade.trade_no, trade.out_trade_no, PAYMENT, trade.subject, trade.created_at, paid_at,
            trade.amount, -_fee(trade.amount),
        )  # fmt: skip
    for refund in merchant.refunds_of(trade):
        done = refund.refunded_at
        if refund.status is RefundStatus.SUCCESS and done is not None and wire.beijing_day(done) == day:
            yield BillLine(
                trade.trade_no, trade.out_trade_no, REFUND, trade.subject, trade.created_at, done,
                -refund.amount, _fee(refund.amount), refund.out_refund_no,
            )  # fmt: skip


def _planted_line(extra: StatementExtra) -> BillLine:
    at = extra.occurred_at or datetime.combine(extra.day, PLANTED_AT, tzinfo=wire.SHANGHAI)
    # The bill has no currency column (Alipay's is in yuan): a planted amount is its digits in yuan.
    amount = Money.parse(extra.amount.format(), wire.CURRENCY)
    if extra.kind is StatementLineKind.REFUND:
        return BillLine(
            extra.trade_no, extra.out_trade_no, REFUND, extra.subject, at, at, -amount, _fee(amount),
            extra.out_refund_no,
        )  # fmt: skip
    return BillLine(extra.trade_no, extra.out_trade_no, PAYMENT, extra.subject, at, at, amount, -_fee(amount))


def bill_lines(merchant: MerchantAccount, protocol: str, day: date) -> list[BillLine]:
    """The day's lines of `protocol`'s trades and refunds at `merchant`, planted ones included."""
    lines = [line for trade in merchant.trades_of(protocol) for line in _trade_lines(merchant, trade, day)]
    lines.extend(_planted_line(extra) for extra in merchant.statement_extras_of(protocol, day))
    lines.sort(key=lambda line: line.finished_at)
    return lines


def _chinese_date(day: date) -> str:
    return f"{day.year:04d}年{day.month:02d}月{day.day:02d}日"


def _csv(rows: Iterable[list[str]]) -> list[str]:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().splitlines()


def _summary(lines: list[BillLine]) -> str:
    def total(amounts: Iterable[Money]) -> str:
        return sum(amounts, Money.zero(wire.CURRENCY)).format()

    payments = sum(1 for line in lines if line.kind == PAYMENT)
    amount, fee = total(line.amount for line in lines), total(line.fee for line in lines)
    return (
        f"#交易合计：{payments}笔，退款合计：{len(lines) - payments}笔，订单金额（元）：{amount}，"
        f"商家实收（元）：{amount}，服务费（元）：{fee}"
    )


def trade_bill(account: str, day: date, lines: list[BillLine], exported_at: datetime) -> bytes:
    """The bill file: `account` is the seller's id (#账号), `lines` the day's, in order."""
    exported, next_day = exported_at.astimezone(wire.SHANGHAI), day + timedelta(days=1)
    text = [
        TITLE,
        f"#账号：[{account}]",
        f"#起始日期：[{_chinese_date(day)} 00:00:00]   终止日期：[{_chinese_date(next_day)} 00:00:00]",
        DETAILS_START,
        ",".join(HEADER),
        *_csv(line.row() for line in lines),
        DETAILS_END,
        _summary(lines),
        f"#导出时间：[{_chinese_date(exported.date())} {exported:%H:%M:%S}]",
    ]
    return ("\n".join(text) + "\n").encode(ENCODING)
