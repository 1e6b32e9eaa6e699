"""WeChat Pay Native pay: place an order, query it by out_trade_no, close it.

    POST /v3/pay/transactions/native                       -> 200 {code_url}
    GET  /v3/pay/transactions/out-trade-no/{no}?mchid=     -> 200 the transaction | 404 ORDER_NOT_EXIST
    POST /v3/pay/transactions/out-trade-no/{no}/close      -> 204 | 400 ORDERPAID | 404 ORDER_NOT_EXIST

The `sim:` directives are read from the order's description. A repeated out_trade_no with the
same amount answers the same code_url while unpaid and ORDERPAID once paid (what WeChat Pay
answers a second order for a paid number); with another amount, OUT_TRADE_NO_USED. A decline
is 403 RULE_LIMIT. Closing a number the channel never had answers ORDER_NOT_EXIST and leaves
the sandbox's tombstone, so that number can never be charged afterwards.
"""

from __future__ import annotations

import re
from typing import Final

from aiohttp import web
from paykit.money import Money

from channel_simulator import operations
from channel_simulator.accounts import Trade, TradeStatus
from channel_simulator.edge import lose_answer, sandbox_of
from channel_simulator.operations import DECLINE_MESSAGE, ChargeRequest, Fate
from channel_simulator.protocols.wechatpay.keys import Keyring
from channel_simulator.protocols.wechatpay.views import code_url, trade_state, transaction_view
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

# WeChat Pay's field rules (Native order reference): out_trade_no 6-32 of [0-9A-Za-z_-|*],
# description up to 127 characters.
OUT_TRADE_NO: Final = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
DESCRIPTION_MAX_CHARS: Final = 127
_IDENTIFIER: Final = re.compile(r"[0-9A-Za-z_\-]{1,32}")


def _not_found(caller: Caller) -> WechatError:
    return caller.refuse(404, "ORDER_NOT_EXIST", "订单不存在")


def _check_mchid(caller: Caller, mchid: str | None) -> None:
    if mchid != caller.keys.mchid:
        raise caller.param_error("mchid is not the mchid of the Authorization")


def _order(caller: Caller) -> ChargeRequest:
    data = json_body(caller)
    appid = text(caller, data, "appid", _IDENTIFIER)
    _check_mchid(caller, text(caller, data, "mchid", _IDENTIFIER))
    if appid != caller.keys.appid:
        raise caller.refuse(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
    description = text(caller, data, "description", max_chars=DESCRIPTION_MAX_CHARS)
    out_trade_no = text(caller, data, "out_trade_no", OUT_TRADE_NO)
    notify_url = url(caller, data, "notify_url")
    total: Money = fen(caller, amount_object(caller, data), "total")
    with refusals(caller):
        return ChargeRequest.with_directives(out_trade_no, total, notify_url, description)


async def create_native(keyring: Keyring, request: web.Request) -> web.Response:
    caller = await read_signed(request, keyring)
    ask = _order(caller)
    with refusals(caller):
        outcome = await operations.create_charge(sandbox_of(request), caller.merchant, NAME, ask)
    if outcome.fate in (Fate.LOST, Fate.ANSWER_LOST):
        return await lose_answer(request, caller.merchant)
    if outcome.fate is Fate.DECLINED or outcome.shown is None:
        raise caller.refuse(403, "RULE_LIMIT", f"交易被风控拒绝 ({DECLINE_MESSAGE})")
    if outcome.shown.status is TradeStatus.SUCCESS:
        raise caller.refuse(400, "ORDERPAID", "该订单已支付")
    return reply(caller.platform, {"code_url": code_url(outcome.shown)})


def _path_number(caller: Caller, request: web.Request) -> str:
    number = request.match_info["out_trade_no"]
    if not OUT_TRADE_NO.fullmatch(number):
        raise caller.param_error(f"out_trade_no is not of the form {OUT_TRADE_NO.pattern}")
    return number


def _known(caller: Caller, out_trade_no: str) -> Trade | None:
    trade = operations.query_charge(caller.merchant, NAME, out_trade_no=out_trade_no)
    # A tombstone is the sandbox's memory of a close, not an order WeChat Pay ever had.
    return None if trade is None or trade.is_tombstone else trade


async def query_by_out_trade_no(keyring: Keyring, request: web.Request) -> web.Response:
    caller = await read_signed(request, keyring)
    _check_mchid(caller, request.query.get("mchid"))
    trade = _known(caller, _path_number(caller, request))
    if trade is None:
        raise _not_found(caller)
    view = transaction_view(caller.keys, trade, trade_state(caller.merchant, trade))
    return reply(caller.platform, view)


async def close(keyring: Keyring, request: web.Request) -> web.Response:
    caller = await read_signed(request, keyring)
    _check_mchid(caller, json_body(caller).get("mchid"))
    out_trade_no = _path_number(caller, request)
    known = _known(caller, out_trade_no)
    with refusals(caller):
        operations.close_charge(caller.merchant, NAME, out_trade_no)
    if known is None:
        raise _not_found(caller)
    return reply(caller.platform, None, 204)
