"""simpay's payouts: POST /v1/payouts and GET /v1/payouts/{out_payout_no}.

The channel sends money from the merchant's account at the channel to its
bank account and answers at once, without a notification: PAID, or FAILED
with PAYOUT_DECLINED (Behaviour.payout_decline_rate, drawn once per new
payout). out_payout_no is the idempotency key, the way a real channel keeps
it: the same request gets the same payout back, PAID or FAILED as first
decided; the same number with another amount, currency or merchant_ref is
refused (INVALID, OUT_PAYOUT_NO_USED, 409) and pays nothing.
"""

from __future__ import annotations

from aiohttp import web

from channel_simulator import fields, operations
from channel_simulator.accounts import MerchantAccount
from channel_simulator.limits import MAX_ID_CHARS
from channel_simulator.operations import PayoutRequest
from channel_simulator.protocols.simpay.views import NOT_FOUND, payout_view
from channel_simulator.protocols.simpay.wire import NAME, invalid, read_signed, refusals, reply


def _parse(merchant: MerchantAccount, body: bytes) -> PayoutRequest:
    try:
        data = fields.json_object(body)
        return PayoutRequest(
            out_payout_no=fields.text(data, "out_payout_no", max_chars=MAX_ID_CHARS),
            merchant_ref=fields.text(data, "merchant_ref", max_chars=MAX_ID_CHARS),
            # Exact, in the currency's own exponent, above zero (fields.money refuses the rest).
            amount=fields.money(data),
        )
    except fields.FieldError as exc:
        raise invalid(merchant, "INVALID_REQUEST", str(exc)) from exc


async def create_payout(request: web.Request) -> web.Response:
    merchant, body = await read_signed(request)
    ask = _parse(merchant, body)
    with refusals(merchant):
        outcome = operations.create_payout(merchant, NAME, ask)
    return reply(request, merchant, payout_view(outcome.payout))


async def query_payout(request: web.Request) -> web.Response:
    merchant, _body = await read_signed(request)
    payout = operations.query_payout(merchant, NAME, request.match_info["out_payout_no"])
    if payout is None:
        return reply(request, merchant, NOT_FOUND)
    return reply(request, merchant, payout_view(payout))
