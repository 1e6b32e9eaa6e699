"""simpay's refunds: POST /v1/refunds and GET /v1/refunds/{out_refund_no}.

The rules (operations.py) are a real channel's: only a paid trade is
refunded, in its own currency, exactly; the refunds of a trade that have not
FAILED never add up to more than it; out_refund_no is the idempotency key
(same request, same answer; same number with another amount, refused).
simpay answers a refund it turns down with result FAILED and the reason.
"""

from __future__ import annotations

from aiohttp import web

from channel_simulator import fields, operations
from channel_simulator.accounts import MerchantAccount
from channel_simulator.edge import sandbox_of
from channel_simulator.limits import MAX_ID_CHARS, MAX_TEXT_CHARS
from channel_simulator.operations import RefundRejected, RefundRequest
from channel_simulator.protocols.simpay.views import NOT_FOUND, refund_failed, refund_view
from channel_simulator.protocols.simpay.wire import NAME, invalid, read_signed, refusals, reply


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


async def create_refund(request: web.Request) -> web.Response:
    merchant, body = await read_signed(request)
    ask = _parse(merchant, body)
    with refusals(merchant):
        outcome = await operations.create_refund(sandbox_of(request), merchant, NAME, ask)
    if isinstance(outcome, RefundRejected):
        return reply(request, merchant, refund_failed(outcome.code, outcome.message))
    return reply(request, merchant, refund_view(outcome.shown))


async def query_refund(request: web.Request) -> web.Response:
    merchant, _body = await read_signed(request)
    refund = operations.query_refund(merchant, NAME, out_refund_no=request.match_info["out_refund_no"])
    if refund is None:
        return reply(request, merchant, NOT_FOUND)
    return reply(request, merchant, refund_view(refund))
