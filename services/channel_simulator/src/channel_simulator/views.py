"""The wire format's JSON views: amounts become the channel's decimal strings only here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from paykit.money import Money

from channel_simulator.accounts import MerchantAccount, Refund, RefundStatus, Trade, TradeStatus


def _amount(amount: Money | None) -> dict[str, Any]:
    if amount is None:
        return {"amount": None, "currency": None}
    return {"amount": amount.format(), "currency": amount.currency}


def charge_view(trade: Trade) -> dict[str, Any]:
    return {
        "result": trade.status.value,
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        **_amount(trade.amount),
        "qr_code": f"simpay://qr/{trade.trade_no}",
        "paid_at": trade.paid_at,
    }


def refund_view(refund: Refund) -> dict[str, Any]:
    view: dict[str, Any] = {
        "result": refund.status.value,
        "refund_no": refund.refund_no,
        "out_refund_no": refund.out_refund_no,
        "out_trade_no": refund.out_trade_no,
        **_amount(refund.amount),
        "refunded_at": refund.refunded_at,
    }
    if refund.code is not None:
        view["code"] = refund.code
    return view


def payment_notification(trade: Trade) -> dict[str, Any]:
    return {
        "type": "PAYMENT",
        "notify_id": trade.notify_id,
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "status": trade.status.value,
        **_amount(trade.amount),
        "paid_at": trade.paid_at,
    }


def refund_notification(refund: Refund) -> dict[str, Any]:
    return {
        "type": "REFUND",
        "notify_id": refund.notify_id,
        "out_trade_no": refund.out_trade_no,
        "out_refund_no": refund.out_refund_no,
        "refund_no": refund.refund_no,
        "status": refund.status.value,
        **_amount(refund.amount),
        "refunded_at": refund.refunded_at,
    }


def _deliveries(sent: int, acked: int) -> dict[str, int]:
    return {"notifications_sent": sent, "notifications_acked": acked}


def admin_refund_view(refund: Refund) -> dict[str, Any]:
    return {
        **refund_view(refund),
        "status": refund.status.value,
        "reason": refund.reason,
        **_deliveries(refund.deliveries.sent, refund.deliveries.acked),
    }


def admin_trade_view(merchant: MerchantAccount, trade: Trade) -> dict[str, Any]:
    return {
        "merchant": merchant.merchant_id,
        **charge_view(trade),
        "status": trade.status.value,
        "subject": trade.subject,
        "directives": trade.directives.tokens(),
        "closed_at": trade.closed_at,
        "notify_id": trade.notify_id,
        **_deliveries(trade.deliveries.sent, trade.deliveries.acked),
        "refunds": [admin_refund_view(r) for r in merchant.refunds_of(trade)],
    }


def _money(total: Money) -> dict[str, Any]:
    return {"amount": total.format(), "amount_minor": total.minor}


def _figure(count: int, total: Money) -> dict[str, Any]:
    return {"count": count, **_money(total)}


class _Tally:
    """Count and sum of one kind of money movement in one currency."""

    def __init__(self, currency: str) -> None:
        self.count = 0
        self.total = Money.zero(currency)

    def add(self, amount: Money) -> None:
        self.count += 1
        self.total = self.total + amount


def _currency_summary(trades: Iterable[Trade], merchant: MerchantAccount) -> dict[str, Any]:
    paid: dict[str, _Tally] = {}
    refunded: dict[str, _Tally] = {}
    for trade in trades:
        if trade.status is not TradeStatus.SUCCESS or trade.amount is None:
            continue
        currency = trade.amount.currency
        paid.setdefault(currency, _Tally(currency)).add(trade.amount)
        tally = refunded.setdefault(currency, _Tally(currency))
        for refund in merchant.refunds_of(trade):
            if refund.status is RefundStatus.SUCCESS:
                tally.add(refund.amount)
    return {
        currency: {
            "paid": _figure(paid[currency].count, paid[currency].total),
            "refunded": _figure(refunded[currency].count, refunded[currency].total),
            # What the channel still holds for the merchant.
            "net": _money(paid[currency].total - refunded[currency].total),
        }
        for currency in sorted(paid)
    }


def summary(merchants: Iterable[MerchantAccount]) -> dict[str, Any]:
    """Money taken at the channel, per merchant and currency, to compare with what the suite recorded."""
    return {"merchants": {m.merchant_id: _currency_summary(m.trades.values(), m) for m in merchants}}
