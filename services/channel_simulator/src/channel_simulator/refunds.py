"""Refunds: POST /v1/refunds and GET /v1/refunds/{out_refund_no}.

The rules a real channel enforces: only a paid trade is refunded, in its own
currency, exactly; the refunds of a trade that have not FAILED never add up
to more than it; out_refund_no is the idempotency key (same request, same
answer; same number with another amount, refused).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from paykit.money import Money

from channel_simulator import fields
from channel_simulator.accounts import MerchantAccount, Refund, TradeStatus
from channel_simulator.lifecycle import finish_refund
from channel_simulator.limits import MAX_ID_CHARS, MAX_REFUNDS, MAX_TEXT_CHARS
from channel_simulator.views import refund_view
from channel_simulator.wire import invalid, read_signed, reply, sandbox_of


@dataclass(frozen=True)
class RefundRequest:
    out_refund_no: str
    out_trade_no: str
    amount: Money
    notify_url: str
    reason: str


def _parse(merchant: MerchantAccount, body: bytes) -> RefundRequest:
    try:
        data = fields.json_object(body)
        return RefundRequest(
            out_refund_no=fields.text(data, "out_refund_no", max_chars=MAX_ID_CHARS),
            out_trade_no=fields.text(data, "out_trade_no", max_chars=MAX_ID_CHARS),
            amount=fields.money(data),
            notify_url=fields.url(data, "notify_url"),
            reason=fields.text(data, "reason", max_chars=MAX_TEXT_CHARS, required=False),
        )
    except fields.FieldError as exc:
        raise invalid(merchant, "INVALID_REQUEST", str(exc)) from exc


def _failed(code: str, message: str) -> dict[str, Any]:
    return {"result": "FAILED", "code": code, "message": message}


def _refusal(merchant: MerchantAccount, ask: RefundRequest) -> dict[str, Any] | None:
    """Why the channel refuses this new refund outright, or None when it accepts it."""
    trade = merchant.trades.get(ask.out_trade_no)
    if trade is None:
        return _failed("TRADE_NOT_FOUND", f"no trade {ask.out_trade_no}")
    if trade.status is not TradeStatus.SUCCESS or trade.amount is None:
        return _failed("TRADE_NOT_PAID", f"trade {ask.out_trade_no} is {trade.status.value}")
    if ask.amount.currency != trade.amount.currency:
        raise invalid(merchant, "CURRENCY_MISMATCH", f"the trade is in {trade.amount.currency}")
    refundable = merchant.refundable(trade)
    if ask.amount > refundable:
        return _failed("REFUND_AMOUNT_EXCEEDED", f"at most {refundable.format()} may still be refunded")
    return None


async def create_refund(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    merchant, body = await read_signed(request)
    ask = _parse(merchant, body)
    existing = merchant.refunds.get(ask.out_refund_no)
    if existing is not None:
        if (existing.out_trade_no, existing.amount) != (ask.out_trade_no, ask.amount):
            raise invalid(merchant, "OUT_REFUND_NO_USED", "out_refund_no was used for another refund", 409)
        return reply(request, merchant, refund_view(existing))
    refusal = _refusal(merchant, ask)
    if refusal is not None:
        return reply(request, merchant, refusal)
    if len(merchant.refunds) >= MAX_REFUNDS:
        raise invalid(merchant, "SANDBOX_FULL", f"{MAX_REFUNDS} refunds stored", 503)
    trade = merchant.trades[ask.out_trade_no]
    refund = Refund(
        merchant.next_refund_no(), ask.out_refund_no, ask.out_trade_no, ask.amount, ask.notify_url, ask.reason
    )
    stale = refund_view(refund)
    reorder = trade.directives.out_of_order or merchant.chance(merchant.behaviour.out_of_order_rate)
    delay_ms = 0 if reorder else merchant.behaviour.refund_delay_ms
    finishing = sandbox.spawn(finish_refund(sandbox, merchant, trade, refund, delay_ms))
    merchant.refunds[refund.out_refund_no] = refund
    trade.out_refund_nos.append(refund.out_refund_no)
    if reorder:
        # Finished and notified (and acknowledged) before the PROCESSING answer leaves.
        await asyncio.wait({finishing})
    return reply(request, merchant, stale)


async def query_refund(request: web.Request) -> web.Response:
    merchant, _body = await read_signed(request)
    refund = merchant.refunds.get(request.match_info["out_refund_no"])
    if refund is None:
        return reply(request, merchant, {"result": "NOT_FOUND"})
    return reply(request, merchant, refund_view(refund))
