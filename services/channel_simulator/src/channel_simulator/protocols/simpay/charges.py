"""simpay's charge, query and close: POST /v1/charges, GET /v1/charges/{no}, POST /v1/charges/{no}/close."""

from __future__ import annotations

from aiohttp import web

from channel_simulator import fields, operations
from channel_simulator.accounts import MerchantAccount
from channel_simulator.edge import lose_answer, sandbox_of
from channel_simulator.limits import MAX_ID_CHARS, MAX_TEXT_CHARS
from channel_simulator.operations import ChargeRequest, Fate
from channel_simulator.protocols.simpay.views import CLOSED, DECLINED, NOT_FOUND, charge_view
from channel_simulator.protocols.simpay.wire import NAME, invalid, read_signed, refusals, reply


def _parse(merchant: MerchantAccount, body: bytes) -> ChargeRequest:
    try:
        data = fields.json_object(body)
        out_trade_no = fields.text(data, "out_trade_no", max_chars=MAX_ID_CHARS)
        amount = fields.money(data)
        notify_url = fields.url(data, "notify_url")
        subject = fields.text(data, "subject", max_chars=MAX_TEXT_CHARS, required=False)
    except fields.FieldError as exc:
        raise invalid(merchant, "INVALID_REQUEST", str(exc)) from exc
    with refusals(merchant):
        return ChargeRequest.with_directives(out_trade_no, amount, notify_url, subject)


async def create_charge(request: web.Request) -> web.Response:
    merchant, body = await read_signed(request)
    charge = _parse(merchant, body)
    with refusals(merchant):
        outcome = await operations.create_charge(sandbox_of(request), merchant, NAME, charge)
    if outcome.fate in (Fate.LOST, Fate.ANSWER_LOST):
        return await lose_answer(request, merchant)
    if outcome.fate is Fate.DECLINED or outcome.shown is None:
        return reply(request, merchant, DECLINED)
    return reply(request, merchant, charge_view(outcome.shown))


async def query_charge(request: web.Request) -> web.Response:
    merchant, _body = await read_signed(request)
    trade = operations.query_charge(merchant, NAME, out_trade_no=request.match_info["out_trade_no"])
    if trade is None:
        return reply(request, merchant, NOT_FOUND)
    return reply(request, merchant, charge_view(trade))


async def close_charge(request: web.Request) -> web.Response:
    merchant, _body = await read_signed(request)
    with refusals(merchant):
        operations.close_charge(merchant, NAME, request.match_info["out_trade_no"])
    return reply(request, merchant, CLOSED)
