"""The card acquirer's refunds: POST /v1/refunds, GET /v1/refunds/{id}, GET /v1/refunds?payment_intent=.

A refund is a core refund numbered by its refund id ("re_..."), so the core's rules hold:
only a succeeded intent is refunded, in its currency, never beyond what is left. It answers
pending; after refund_delay_ms it succeeds (or fails, failure_reason "declined", at the
account's refund_decline_rate) and refund.updated is sent. Without `amount`, what is left is
refunded. Refused: a PaymentIntent not succeeded (payment_intent_unexpected_state), more than
is left (amount_too_large; charge_already_refunded when nothing is left).
"""

from __future__ import annotations

from typing import Final

from channel_simulator import operations
from channel_simulator.accounts import Refund, Trade, TradeStatus
from channel_simulator.operations import RefundRejected, RefundRequest, Refused
from channel_simulator.protocols.card import wire
from channel_simulator.protocols.card.accounts import new_id
from channel_simulator.protocols.card.http import Call, Reply
from channel_simulator.protocols.card.settlement import batch_refund
from channel_simulator.protocols.card.views import charge_id, refund_view
from channel_simulator.protocols.card.wire import NAME, CardError, invalid

REFUND_REASONS: Final = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
LIST_DEFAULT_LIMIT: Final = 10
_CREATE_PARAMS: Final = frozenset({"payment_intent", "charge", "amount", "reason"})


def _view(call: Call, trade: Trade, refund: Refund) -> dict[str, object]:
    batch_refund(call.account.batches, refund)
    return refund_view(trade, refund)


def _refunded_trade(call: Call) -> Trade:
    """The intent the refund is of, named by payment_intent (or by its charge)."""
    params = call.params
    intent_id, charge = params.text("payment_intent"), params.text("charge")
    if charge and not intent_id:
        by_charge = call.merchant.trade_by_no(NAME, charge.removeprefix("ch_"))
        if by_charge is None:
            raise wire.missing("charge", charge, "charge")
        intent_id = by_charge.out_trade_no
    if not intent_id:
        raise invalid("Missing required param: payment_intent.", "payment_intent", "parameter_missing")
    trade = call.merchant.trade(NAME, intent_id) or call.account.declined.get(intent_id)
    if trade is None or trade.amount is None:
        raise CardError(
            400,
            "invalid_request_error",
            f"No such payment_intent: {intent_id!r}",
            code="resource_missing",
            param="payment_intent",
        )
    return trade


def _rejected(call: Call, trade: Trade, rejection: RefundRejected) -> Reply:
    if rejection.code == "REFUND_AMOUNT_EXCEEDED":
        nothing_left = not call.merchant.refundable(trade).is_positive
        code = "charge_already_refunded" if nothing_left else "amount_too_large"
        message = (
            f"Charge {charge_id(trade)} has already been refunded." if nothing_left else rejection.message
        )
        return Reply.error(invalid(message, "amount", code))
    if rejection.code == "TRADE_NOT_PAID":
        message = f"PaymentIntent {trade.out_trade_no} does not have a successful charge to refund."
        return Reply.error(invalid(message, "payment_intent", "payment_intent_unexpected_state"))
    return Reply.error(invalid(rejection.message, "payment_intent", rejection.code.lower()))


async def create_refund(call: Call) -> Reply:
    call.params.only(_CREATE_PARAMS, frozenset({"metadata", "expand"}))
    trade = _refunded_trade(call)
    if trade.amount is None or trade.out_trade_no in call.account.declined:
        return _rejected(call, trade, RefundRejected("TRADE_NOT_PAID", "declined"))
    reason = call.params.text("reason")
    if reason and reason not in REFUND_REASONS:
        raise invalid(f"reason must be one of {', '.join(sorted(REFUND_REASONS))}", "reason")
    asked = call.params.text("amount")
    if asked:
        amount = wire.money(asked, wire.currency_of(trade.amount))
    elif trade.status is TradeStatus.SUCCESS:
        amount = call.merchant.refundable(trade)
        if not amount.is_positive:
            return _rejected(call, trade, RefundRejected("REFUND_AMOUNT_EXCEEDED", "nothing left"))
    else:
        amount = trade.amount
    ask = RefundRequest(
        out_refund_no=new_id("re"),
        out_trade_no=trade.out_trade_no,
        amount=amount,
        notify_url="",
        reason=reason,
        extra={"metadata": call.params.metadata(), "reason": reason},
    )
    try:
        outcome = await operations.create_refund(call.sandbox, call.merchant, NAME, ask)
    except Refused as exc:
        raise wire.refused(exc) from exc
    if isinstance(outcome, RefundRejected):
        return _rejected(call, trade, outcome)
    return Reply.json(_view(call, trade, outcome.shown))


async def retrieve_refund(call: Call) -> Reply:
    call.params.only(frozenset(), frozenset({"expand"}))
    refund_id = call.request.match_info["id"]
    refund = operations.query_refund(call.merchant, NAME, out_refund_no=refund_id)
    if refund is None:
        raise wire.missing("refund", refund_id, "refund")
    return Reply.json(_view(call, call.merchant.trades[refund.trade_key], refund))


async def list_refunds(call: Call) -> Reply:
    """The account's refunds, newest first; of one PaymentIntent when payment_intent is given."""
    call.params.only(frozenset({"payment_intent", "limit"}), frozenset({"expand"}))
    limit = call.params.limit(LIST_DEFAULT_LIMIT)
    intent_id = call.params.text("payment_intent")
    if intent_id:
        trade = call.merchant.trade(NAME, intent_id)
        if trade is None:
            raise wire.missing("payment_intent", intent_id, "payment_intent")
        refunds = call.merchant.refunds_of(trade)
    else:
        refunds = [r for r in call.merchant.refunds.values() if r.protocol == NAME]
    newest = sorted(refunds, key=lambda r: (r.created_at, r.refund_no), reverse=True)
    views = [_view(call, call.merchant.trades[r.trade_key], r) for r in newest[:limit]]
    return Reply.json(
        {"object": "list", "data": views, "has_more": len(newest) > limit, "url": f"{wire.API_PATH}/refunds"}
    )
