"""simpay's JSON views: amounts become the channel's decimal strings only here (and in the admin views)."""

from __future__ import annotations

from typing import Any

from channel_simulator.accounts import Payout, Refund, Trade
from channel_simulator.operations import DECLINE_CODE, DECLINE_MESSAGE
from channel_simulator.views import amount_fields, iso_time, payout_fields, refund_fields, trade_fields

DECLINED: dict[str, Any] = {"result": "DECLINED", "code": DECLINE_CODE, "message": DECLINE_MESSAGE}
NOT_FOUND: dict[str, Any] = {"result": "NOT_FOUND"}
CLOSED: dict[str, Any] = {"result": "CLOSED"}


def charge_view(trade: Trade) -> dict[str, Any]:
    return trade_fields(trade)


def refund_view(refund: Refund) -> dict[str, Any]:
    return refund_fields(refund)


def refund_failed(code: str, message: str) -> dict[str, Any]:
    return {"result": "FAILED", "code": code, "message": message}


def payout_view(payout: Payout) -> dict[str, Any]:
    return payout_fields(payout)


def payment_notification(trade: Trade) -> dict[str, Any]:
    return {
        "type": "PAYMENT",
        "notify_id": trade.notify_id,
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "status": trade.status.value,
        **amount_fields(trade.amount),
        "paid_at": iso_time(trade.paid_at),
    }


def refund_notification(refund: Refund) -> dict[str, Any]:
    return {
        "type": "REFUND",
        "notify_id": refund.notify_id,
        "out_trade_no": refund.out_trade_no,
        "out_refund_no": refund.out_refund_no,
        "refund_no": refund.refund_no,
        "status": refund.status.value,
        **amount_fields(refund.amount),
        "refunded_at": iso_time(refund.refunded_at),
    }
