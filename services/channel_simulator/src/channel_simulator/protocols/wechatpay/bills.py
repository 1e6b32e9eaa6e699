"""WeChat Pay's trade bill (交易账单, bill_type ALL) and its download.

    GET /v3/bill/tradebill?bill_date=YYYY-MM-DD&bill_type=ALL
        -> 200 {"hash_type": "SHA1", "hash_value": <hex SHA-1 of the file>, "download_url"}
    GET <download_url>  (signed like any request) -> 200 the file, unsigned (its hash came signed)

The file is the format reconciliation reads (reconciliation/statements/wechatpay.py): UTF-8
(with the BOM WeChat Pay writes), the column header, one line per payment that succeeded and
per refund that succeeded on the day in China time, then the summary header and row. Every
value is prefixed with a backtick. Lines planted through /v1/admin/statement-extras for
"wechatpay" are listed among them, at their occurred_at (noon of their day when not given).

Fee rule (the sandbox's, WeChat Pay's standard rate for Native pay merchants): 0.60 % of the
amount, rounded half up to the fen (paykit.money.allocate_fee, Rounding.HALF_UP), positive on
a payment line. A refund line returns the fee of the amount refunded, by the same rule, as a
negative fee (so several partial refunds may return a fen more or less than the payment's fee,
as at WeChat Pay, which also rounds each line).

The sandbox makes the bill of any day up to today (WeChat Pay makes it after 10:00 the next day
and answers NO_STATEMENT_EXIST for a day without trades; the sandbox gives the quiet day an empty
bill, so reconciling it finds nothing rather than failing). A future day: 400 NO_STATEMENT_EXIST.
The bill is made when the link is asked for and kept with its link: the file downloaded is the
one whose hash was given, for BILL_LINK_TTL_S.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as clock_time
from typing import Final

from aiohttp import web
from paykit.money import Money, Rounding, allocate_fee

from channel_simulator.accounts import MerchantAccount, RefundStatus, StatementExtra, StatementLineKind
from channel_simulator.protocols.wechatpay.keys import Keyring, MerchantKeys
from channel_simulator.protocols.wechatpay.views import (
    BANK_TYPE,
    CHINA,
    TRADE_TYPE,
    openid,
    refund_id,
    transaction_id,
)
from channel_simulator.protocols.wechatpay.wire import CURRENCY, NAME, PREFIX, Caller, read_signed, reply

FEE_RATE_BPS: Final = 60
FEE_ROUNDING: Final = Rounding.HALF_UP
FEE_RATE_TEXT: Final = "0.60%"
DOWNLOAD_PATH: Final = f"{PREFIX}/v3/billdownload/file"
# A download link works this long (WeChat Pay's last 30 s; the sandbox is lenient), and the
# sandbox keeps at most this many bills waiting to be downloaded (the oldest go first).
BILL_LINK_TTL_S: Final = 300.0
MAX_BILL_LINKS: Final = 256
# A planted line without occurred_at happens at noon of its day, China time.
EXTRA_DEFAULT_TIME: Final = clock_time(12, 0)
HEADER: Final = (
    "交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识",
    "交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额", "微信退款单号",
    "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态", "商品名称", "商户数据包",
    "手续费", "费率", "订单金额", "申请退款金额", "费率备注",
)  # fmt: skip
SUMMARY_HEADER: Final = (
    "总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额",
    "申请退款总金额",
)  # fmt: skip
_DAY: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_BOM: Final = "\ufeff"
_LINE_END: Final = "\r\n"


def fee_of(amount: Money) -> Money:
    return allocate_fee(amount, FEE_RATE_BPS, FEE_ROUNDING)


@dataclass(frozen=True)
class BillLine:
    """One line of the bill: a payment (refund_id empty) or a refund."""

    at: datetime
    transaction_id: str
    out_trade_no: str
    # 应结订单金额: the order's amount, on its refund lines too.
    order_amount: Money
    payer: str = ""
    subject: str = ""
    refund_id: str = ""
    out_refund_no: str = ""
    refund_amount: Money | None = None

    @property
    def fee(self) -> Money:
        if self.refund_amount is None:
            return fee_of(self.order_amount)
        return -fee_of(self.refund_amount)


def _china_day(moment: datetime) -> date:
    return moment.astimezone(CHINA).date()


def _real_lines(merchant: MerchantAccount, day: date) -> Iterator[BillLine]:
    for trade in merchant.trades_of(NAME):
        if trade.paid_at is None or trade.amount is None or _china_day(trade.paid_at) != day:
            continue
        yield BillLine(
            at=trade.paid_at,
            transaction_id=transaction_id(trade.trade_no),
            out_trade_no=trade.out_trade_no,
            order_amount=trade.amount,
            payer=openid(trade),
            subject=trade.subject,
        )
    for refund in merchant.refunds.values():
        done = refund.refunded_at
        if refund.protocol != NAME or refund.status is not RefundStatus.SUCCESS or done is None:
            continue
        trade = merchant.trades[refund.trade_key]
        if _china_day(done) != day or trade.amount is None:
            continue
        yield BillLine(
            at=done,
            transaction_id=transaction_id(trade.trade_no),
            out_trade_no=trade.out_trade_no,
            order_amount=trade.amount,
            payer=openid(trade),
            subject=trade.subject,
            refund_id=refund_id(refund.refund_no),
            out_refund_no=refund.out_refund_no,
            refund_amount=refund.amount,
        )


def _planted_line(merchant: MerchantAccount, extra: StatementExtra) -> BillLine:
    at = extra.occurred_at or datetime.combine(extra.day, EXTRA_DEFAULT_TIME, CHINA)
    txn = transaction_id(extra.trade_no)
    if extra.kind is StatementLineKind.PAYMENT:
        return BillLine(at, txn, extra.out_trade_no, extra.amount, subject=extra.subject)
    # A refund line shows its order's amount: the real trade's, else (an invented trade) the refund's.
    trade = merchant.trade(NAME, extra.out_trade_no)
    order = trade.amount if trade is not None and trade.amount is not None else extra.amount
    return BillLine(
        at=at,
        transaction_id=txn,
        out_trade_no=extra.out_trade_no,
        order_amount=order,
        subject=extra.subject,
        refund_id=refund_id(extra.refund_no),
        out_refund_no=extra.out_refund_no,
        refund_amount=extra.amount,
    )


def bill_lines(merchant: MerchantAccount, day: date) -> list[BillLine]:
    """The day's lines (China time), real and planted, in the order they happened."""
    lines = list(_real_lines(merchant, day))
    lines.extend(_planted_line(merchant, extra) for extra in merchant.statement_extras_of(NAME, day))
    return sorted(lines, key=lambda line: line.at)


def _one_line(text: str) -> str:
    # A line break inside a value would end the bill's line (the reader splits on every kind).
    return " ".join(text.splitlines())


def _row(keys: MerchantKeys, line: BillLine) -> list[str]:
    """The line's values in HEADER's order."""
    order, refund = line.order_amount, line.refund_amount
    zero = Money.zero(order.currency).format()
    refunded = zero if refund is None else refund.format()
    is_refund = refund is not None
    values = {
        "交易时间": line.at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
        "公众账号ID": keys.appid,
        "商户号": keys.mchid,
        "特约商户号": "0",
        "设备号": "",
        "微信订单号": line.transaction_id,
        "商户订单号": line.out_trade_no,
        "用户标识": line.payer,
        "交易类型": TRADE_TYPE,
        "交易状态": "REFUND" if is_refund else "SUCCESS",
        "付款银行": BANK_TYPE,
        "货币种类": order.currency,
        "应结订单金额": order.format(),
        "代金券金额": zero,
        "微信退款单号": line.refund_id,
        "商户退款单号": line.out_refund_no,
        "退款金额": refunded,
        "充值券退款金额": zero,
        "退款类型": "ORIGINAL" if is_refund else "",
        "退款状态": "SUCCESS" if is_refund else "",
        "商品名称": _one_line(line.subject),
        "商户数据包": "",
        "手续费": line.fee.format(),
        "费率": FEE_RATE_TEXT,
        "订单金额": zero if is_refund else order.format(),
        "申请退款金额": refunded,
        "费率备注": "",
    }
    return [values[column] for column in HEADER]


def _summary(lines: list[BillLine]) -> list[str]:
    """Totals in minor units of CNY (a planted line in another currency is the operator's doing)."""
    payments = [line for line in lines if line.refund_amount is None]
    refunded = sum(line.refund_amount.minor for line in lines if line.refund_amount is not None)
    paid = sum(line.order_amount.minor for line in payments)
    fees = sum(line.fee.minor for line in lines)

    def show(minor: int) -> str:
        return Money(minor, CURRENCY).format()

    return [str(len(lines)), show(paid), show(refunded), show(0), show(fees), show(paid), show(refunded)]


def trade_bill(keys: MerchantKeys, merchant: MerchantAccount, day: date) -> bytes:
    lines = bill_lines(merchant, day)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=_LINE_END)
    out.write(_BOM + ",".join(HEADER) + _LINE_END)
    for line in lines:
        writer.writerow("`" + value for value in _row(keys, line))
    out.write(",".join(SUMMARY_HEADER) + _LINE_END)
    writer.writerow("`" + value for value in _summary(lines))
    return out.getvalue().encode("utf-8")


# -- the two requests ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Kept:
    account_id: str
    content: bytes
    expires_at_s: float


class BillLinks:
    """Bills made for a tradebill answer, waiting for their download (bounded, expiring)."""

    def __init__(self) -> None:
        self._kept: OrderedDict[str, _Kept] = OrderedDict()

    def keep(self, account_id: str, content: bytes, now_s: float) -> str:
        while len(self._kept) >= MAX_BILL_LINKS:
            self._kept.popitem(last=False)
        token = secrets.token_urlsafe(16)
        self._kept[token] = _Kept(account_id, content, now_s + BILL_LINK_TTL_S)
        return token

    def find(self, token: str, account_id: str, now_s: float) -> bytes | None:
        """The bill behind `token` while its link works, only for the account it was made for."""
        kept = self._kept.get(token)
        if kept is None or kept.account_id != account_id or kept.expires_at_s < now_s:
            return None
        return kept.content


def _bill_day(caller: Caller, request: web.Request) -> date:
    text = request.query.get("bill_date", "")
    try:
        if not _DAY.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise caller.param_error("bill_date must be a date, YYYY-MM-DD") from None
    if request.query.get("bill_type", "ALL") != "ALL":
        raise caller.param_error("the sandbox makes bill_type ALL only")
    if "tar_type" in request.query:
        raise caller.param_error("the sandbox serves bills uncompressed (no tar_type)")
    if day > datetime.now(CHINA).date():
        raise caller.refuse(400, "NO_STATEMENT_EXIST", "账单文件不存在 (a day still to come)")
    return day


async def tradebill(keyring: Keyring, links: BillLinks, request: web.Request) -> web.Response:
    caller = await read_signed(request, keyring)
    day = _bill_day(caller, request)
    content = trade_bill(caller.keys, caller.merchant, day)
    token = links.keep(caller.merchant.merchant_id, content, time.monotonic())
    return reply(
        caller.platform,
        {
            "hash_type": "SHA1",
            "hash_value": hashlib.sha1(content, usedforsecurity=False).hexdigest(),
            # On the host the merchant called: WeChat Pay's connector fetches nowhere else.
            "download_url": f"{request.url.origin()}{DOWNLOAD_PATH}?token={token}",
        },
    )


async def download(keyring: Keyring, links: BillLinks, request: web.Request) -> web.Response:
    caller = await read_signed(request, keyring)
    content = links.find(request.query.get("token", ""), caller.merchant.merchant_id, time.monotonic())
    if content is None:
        raise caller.refuse(404, "RESOURCE_NOT_EXISTS", "下载链接不存在或已过期 (ask tradebill again)")
    # Not signed: the file is checked against the signed hash_value.
    return web.Response(body=content, content_type="text/csv", charset="utf-8")
