"""The card acquirer's JSON objects, in Stripe's shapes: PaymentIntent, Charge (expanded), Refund,
Event. Amounts become the acquirer's integers here and nowhere else.

A PaymentIntent is a core Trade (out_trade_no = the intent id) plus what the protocol kept in
`Trade.extra`: metadata, capture_method, payment_method, whether it was confirmed, authorised
(manual capture) or declined (last_payment_error), and its settlement batch once captured.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from channel_simulator.accounts import Refund, RefundStatus, Trade, TradeStatus
from channel_simulator.protocols.card.accounts import batch_of
from channel_simulator.protocols.card.wire import currency_of, to_amount

API_VERSION: Final = "2025-04-30.basil"
# Where the payer is sent to authenticate (3-D Secure); nothing serves it, the payer is simulated.
AUTHENTICATION_URL: Final = "simcard://3ds/{intent_id}"
_REFUND_STATUS: Final = {
    RefundStatus.PROCESSING: "pending",
    RefundStatus.SUCCESS: "succeeded",
    RefundStatus.FAILED: "failed",
}


def unix(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def intent_status(trade: Trade) -> str:
    """Stripe's PaymentIntent status of the trade."""
    extra = trade.extra
    if trade.status is TradeStatus.CLOSED:
        return "canceled"
    if trade.status is TradeStatus.SUCCESS:
        return "succeeded"
    if extra.get("last_payment_error"):
        return "requires_payment_method"
    if not extra.get("confirmed"):
        return "requires_confirmation" if extra.get("payment_method") else "requires_payment_method"
    if extra.get("authorised"):
        return "requires_capture"
    # Confirmed and not paid: the payer is still authenticating (3-D Secure), or never will.
    return "requires_action"


def charge_id(trade: Trade) -> str:
    return f"ch_{trade.trade_no}"


def _amount(trade: Trade) -> int:
    if trade.amount is None:
        raise ValueError(f"trade {trade.out_trade_no} has no amount: not a PaymentIntent")
    return to_amount(trade.amount)


def charge_view(trade: Trade) -> dict[str, Any]:
    """The intent's latest charge, as `expand[]=latest_charge` shows it; `settlement_batch` is the
    sandbox acquirer's own field (Stripe reports batches through payouts instead)."""
    paid = trade.status is TradeStatus.SUCCESS
    if trade.amount is None:
        raise ValueError(f"trade {trade.out_trade_no} has no amount: not a PaymentIntent")
    return {
        "id": charge_id(trade),
        "object": "charge",
        "amount": _amount(trade),
        "amount_captured": _amount(trade) if paid else 0,
        "currency": currency_of(trade.amount),
        "created": unix(trade.paid_at or trade.created_at),
        "captured": paid,
        "paid": True,
        "status": "succeeded",
        "payment_intent": trade.out_trade_no,
        "metadata": dict(trade.extra.get("metadata", {})),
        "livemode": False,
        "settlement_batch": batch_of(trade),
    }


def _latest_charge(trade: Trade, status: str, expand: bool) -> Any:
    if status not in ("succeeded", "requires_capture"):
        return None
    return charge_view(trade) if expand else charge_id(trade)


def intent_view(trade: Trade, *, expand_charge: bool = False) -> dict[str, Any]:
    status = intent_status(trade)
    extra = trade.extra
    amount = _amount(trade)
    next_action = None
    if status == "requires_action":
        url = AUTHENTICATION_URL.format(intent_id=trade.out_trade_no)
        next_action = {"type": "redirect_to_url", "redirect_to_url": {"url": url, "return_url": None}}
    return {
        "id": trade.out_trade_no,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": amount if status == "requires_capture" else 0,
        "amount_received": amount if status == "succeeded" else 0,
        "currency": currency_of(trade.amount) if trade.amount is not None else None,
        "status": status,
        "capture_method": extra.get("capture_method", "automatic"),
        "confirmation_method": "automatic",
        "created": unix(trade.created_at),
        "canceled_at": unix(trade.closed_at) if status == "canceled" else None,
        "cancellation_reason": extra.get("cancellation_reason") if status == "canceled" else None,
        "description": trade.subject or None,
        "last_payment_error": extra.get("last_payment_error"),
        "latest_charge": _latest_charge(trade, status, expand_charge),
        "livemode": False,
        "metadata": dict(extra.get("metadata", {})),
        "next_action": next_action,
        "payment_method": extra.get("payment_method") or None,
        "payment_method_types": ["card"],
    }


def refund_view(trade: Trade, refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.out_refund_no,
        "object": "refund",
        "amount": to_amount(refund.amount),
        "currency": currency_of(refund.amount),
        "status": _REFUND_STATUS[refund.status],
        "payment_intent": refund.out_trade_no,
        "charge": charge_id(trade),
        "reason": refund.extra.get("reason") or None,
        "failure_reason": "declined" if refund.status is RefundStatus.FAILED else None,
        "metadata": dict(refund.extra.get("metadata", {})),
        "created": unix(refund.created_at),
        "settlement_batch": batch_of(refund),
    }


def payment_event_type(trade: Trade) -> str:
    status = intent_status(trade)
    if status == "succeeded":
        return "payment_intent.succeeded"
    if status == "canceled":
        return "payment_intent.canceled"
    if status == "requires_payment_method" and trade.extra.get("last_payment_error"):
        return "payment_intent.payment_failed"
    return "payment_intent.requires_action"


def event(event_id: str, event_type: str, obj: dict[str, Any], created_s: int) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "api_version": API_VERSION,
        "type": event_type,
        "created": created_s,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": obj},
    }
