"""The wire format's JSON views: amounts become the channel's decimal strings only here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from paykit.money import Money

from channel_simulator.accounts import (
    MerchantAccount,
    Payout,
    PayoutStatus,
    Refund,
    RefundStatus,
    Trade,
    TradeStatus,
)


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


def payout_view(payout: Payout) -> dict[str, Any]:
    view: dict[str, Any] = {
        "result": payout.status.value,
        "payout_no": payout.payout_no,
        "out_payout_no": payout.out_payout_no,
        "merchant_ref": payout.merchant_ref,
        **_amount(payout.amount),
        "paid_at": payout.paid_at,
    }
    if payout.code is not None:
        view["code"] = payout.code
        view["message"] = payout.message
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


def admin_payout_view(merchant: MerchantAccount, payout: Payout) -> dict[str, Any]:
    return {
        "merchant": merchant.merchant_id,
        **payout_view(payout),
        "status": payout.status.value,
        "created_at": payout.created_at,
    }


def _money(total: Money) -> dict[str, Any]:
    return {"amount": total.format(), "amount_minor": total.minor}


class _Tally:
    """Count and sum of one kind of money movement in one currency."""

    def __init__(self, currency: str) -> None:
        self.count = 0
        self.total = Money.zero(currency)

    def add(self, amount: Money) -> None:
        self.count += 1
        self.total = self.total + amount


def _figure(tally: _Tally) -> dict[str, Any]:
    return {"count": tally.count, **_money(tally.total)}


def _tally(tallies: dict[str, _Tally], currency: str) -> _Tally:
    return tallies.setdefault(currency, _Tally(currency))


def _currency_summary(merchant: MerchantAccount) -> dict[str, Any]:
    paid: dict[str, _Tally] = {}
    refunded: dict[str, _Tally] = {}
    paid_out: dict[str, _Tally] = {}
    for trade in merchant.trades.values():
        if trade.status is not TradeStatus.SUCCESS or trade.amount is None:
            continue
        _tally(paid, trade.amount.currency).add(trade.amount)
        for refund in merchant.refunds_of(trade):
            if refund.status is RefundStatus.SUCCESS:
                _tally(refunded, refund.amount.currency).add(refund.amount)
    for payout in merchant.payouts.values():
        if payout.status is PayoutStatus.PAID:
            _tally(paid_out, payout.amount.currency).add(payout.amount)
    # A currency only paid out in (no trade in it) is listed too, with zero paid.
    return {
        currency: {
            "paid": _figure(_tally(paid, currency)),
            "refunded": _figure(_tally(refunded, currency)),
            # Money taken less money given back; payouts are counted apart, in paid_out.
            "net": _money(_tally(paid, currency).total - _tally(refunded, currency).total),
            "paid_out": _figure(_tally(paid_out, currency)),
        }
        for currency in sorted(paid.keys() | paid_out.keys())
    }


def summary(merchants: Iterable[MerchantAccount]) -> dict[str, Any]:
    """Money taken and paid out at the channel, per merchant and currency, to compare with what the
    suite recorded."""
    return {"merchants": {m.merchant_id: _currency_summary(m) for m in merchants}}
