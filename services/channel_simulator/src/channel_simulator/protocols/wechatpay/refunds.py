"""WeChat Pay domestic refunds: POST /v3/refund/domestic/refunds, GET .../refunds/{out_refund_no}.

The refund names its trade by out_trade_no and repeats the order's total (amount.total), which
WeChat Pay checks. The answer is PROCESSING; after refund_delay_ms the refund is SUCCESS (or,
declined by refund_decline_rate, CLOSED: no money moved) and a REFUND.SUCCESS (REFUND.CLOSED)
callback goes to notify_url, when one was given. Refused on its merits, signed: no such trade
404 RESOURCE_NOT_EXISTS; the trade is not paid, or its refunds would exceed it, 400
INVALID_REQUEST; out_refund_no used for another refund, 400 RESOURCE_ALREADY_EXISTS.
"""

from __future__ import annotations

import re
from typing import Final

from aiohttp import web

from channel_simulator import operations
from channel_simulator.edge import sandbox_of
from channel_simulator.operations import RefundRejected, RefundRequest
from channel_simulator.protocols.wechatpay.keys import Keyring
from channel_simulator.protocols.wechatpay.trades import OUT_TRADE_NO
from channel_simulator.protocols.wechatpay.views import refund_view
from channel_simulator.protocols.wechatpay.wire import (
    NAME,
    Caller,
    WechatError,
    amount_object,
    fen,
    json_body,
    read_signed,
    refusals,
    reply,
    text,
    url,
)

# WeChat Pay's field rules (domestic refund reference): out_refund_no 1-64 of
# [0-9A-Za-z_-|*@], reason up to 80 characters.
OUT_REFUND_NO: Final = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
REASON_MAX_CHARS: Final = 80
# The neutral core's rejections in WeChat Pay's codes.
_REJECTED: Final = {
    "TRADE_NOT_FOUND": (404, "RESOURCE_NOT_EXISTS"),
    "TRADE_NOT_PAID": (400, "INVALID_REQUEST"),
    "REFUND_AMOUNT_EXCEEDED": (400, "INVALID_REQUEST"),
}


def _refund(caller: Caller) -> RefundRequest:
    data = json_body(caller)
    if "out_trade_no" not in data and "transaction_id" in data:
        raise caller.param_error("the sandbox finds trades by out_trade_no only")
    out_trade_no = text(caller, data, "out_trade_no", OUT_TRADE_NO)
    out_refund_no = text(caller, data, "out_refund_no", OUT_REFUND_NO)
    reason = text(caller, data, "reason", max_chars=REASON_MAX_CHARS, required=False)
    # notify_url is optional at WeChat Pay (else the one set up for the merchant); here: no callback.
    notify_url = url(caller, data, "notify_url") if data.get("notify_url") is not None else ""
    amount = amount_object(caller, data)
    asked, total = fen(caller, amount, "refund"), fen(caller, amount, "total")
    trade = caller.merchant.trade(NAME, out_trade_no)
    if trade is not None and trade.amount is not None and trade.amount != total:
        raise caller.refuse(400, "INVALID_REQUEST", f"amount.total {total.minor} is not the order's total")
    return RefundRequest(out_refund_no, out_trade_no, asked, notify_url, reason)


def _rejected(caller: Caller, rejection: RefundRejected) -> WechatError:
    status, code = _REJECTED.get(rejection.code, (400, "INVALID_REQUEST"))
    return caller.refuse(status, code, f"{rejection.code}: {rejection.message}")


async def create_refund(keyring: Keyring, request: web.Request) -> web.Response:
    caller = await read_signed(request, keyring)
    ask = _refund(caller)
    with refusals(caller):
        outcome = await operations.create_refund(sandbox_of(request), caller.merchant, NAME, ask)
    if isinstance(outcome, RefundRejected):
        raise _rejected(caller, outcome)
    trade = caller.merchant.trades[outcome.refund.trade_key]
    return reply(caller.platform, refund_view(trade, outcome.shown))


async def query_refund(keyring: Keyring, request: web.Request) -> web.Response:
    caller = await read_signed(request, keyring)
    number = request.match_info["out_refund_no"]
    if not OUT_REFUND_NO.fullmatch(number):
        raise caller.param_error(f"out_refund_no is not of the form {OUT_REFUND_NO.pattern}")
    refund = operations.query_refund(caller.merchant, NAME, out_refund_no=number)
    if refund is None:
        raise caller.refuse(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
    trade = caller.merchant.trades[refund.trade_key]
    return reply(caller.platform, refund_view(trade, refund))
