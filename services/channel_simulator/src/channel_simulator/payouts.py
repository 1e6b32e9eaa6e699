"""Payouts: POST /v1/payouts and GET /v1/payouts/{out_payout_no}.

The channel sends money from the merchant's account at the channel to its
bank account and answers at once, without a notification: PAID, or FAILED
with PAYOUT_DECLINED (Behaviour.payout_decline_rate, drawn once per new
payout). out_payout_no is the idempotency key, the way a real channel keeps
it: the same request gets the same payout back, PAID or FAILED as first
decided; the same number with another amount, currency or merchant_ref is
refused (INVALID, OUT_PAYOUT_NO_USED, 409) and pays nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from paykit.money import Money

from channel_simulator import fields
from channel_simulator.accounts import MerchantAccount, Payout
from channel_simulator.limits import MAX_ID_CHARS, MAX_PAYOUTS
from channel_simulator.views import payout_view
from channel_simulator.wire import invalid, read_signed, reply


@dataclass(frozen=True)
class PayoutRequest:
    out_payout_no: str
    merchant_ref: str
    amount: Money


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


def _answer_to_repeat(merchant: MerchantAccount, existing: Payout, ask: PayoutRequest) -> Payout:
    if (existing.merchant_ref, existing.amount) != (ask.merchant_ref, ask.amount):
        raise invalid(merchant, "OUT_PAYOUT_NO_USED", "out_payout_no was used for another payout", 409)
    return existing


async def create_payout(request: web.Request) -> web.Response:
    merchant, body = await read_signed(request)
    ask = _parse(merchant, body)
    existing = merchant.payouts.get(ask.out_payout_no)
    if existing is not None:
        return reply(request, merchant, payout_view(_answer_to_repeat(merchant, existing, ask)))
    if len(merchant.payouts) >= MAX_PAYOUTS:
        raise invalid(merchant, "SANDBOX_FULL", f"{MAX_PAYOUTS} payouts stored", 503)
    declined = merchant.chance(merchant.behaviour.payout_decline_rate)
    payout = Payout.decided(
        merchant.next_payout_no(), ask.out_payout_no, ask.merchant_ref, ask.amount, declined=declined
    )
    merchant.payouts[payout.out_payout_no] = payout
    return reply(request, merchant, payout_view(payout))


async def query_payout(request: web.Request) -> web.Response:
    merchant, _body = await read_signed(request)
    payout = merchant.payouts.get(request.match_info["out_payout_no"])
    if payout is None:
        return reply(request, merchant, {"result": "NOT_FOUND"})
    return reply(request, merchant, payout_view(payout))
