"""The operator's JSON views (admin panel), whatever protocol created the records, and the summary.

Amounts are decimal strings in the currency's major unit and times ISO 8601
in UTC to the second, as simpay writes them (protocols/simpay/views.py uses
the same helpers); other protocols format their own wire views.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
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


def amount_fields(amount: Money | None) -> dict[str, Any]:
    if amount is None:
        return {"amount": None, "currency": None}
    return {"amount": amount.format(), "currency": amount.currency}


def iso_time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")


def qr_code(trade: Trade) -> str:
    """The code the simulated payer scans."""
    return f"simpay://qr/{trade.trade_no}"


def _deliveries(sent: int, acked: int) -> dict[str, int]:
    return {"notifications_sent": sent, "notifications_acked": acked}


def trade_fields(trade: Trade) -> dict[str, Any]:
    """A trade as simpay shows it (protocols/simpay/views.py answers with exactly this)."""
    return {
        "result": trade.status.value,
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        **amount_fields(trade.amount),
        "qr_code": qr_code(trade),
        "paid_at": iso_time(trade.paid_at),
    }


def refund_fields(refund: Refund) -> dict[str, Any]:
    """A refund as simpay shows it."""
    view: dict[str, Any] = {
        "result": refund.status.value,
        "refund_no": refund.refund_no,
        "out_refund_no": refund.out_refund_no,
        "out_trade_no": refund.out_trade_no,
        **amount_fields(refund.amount),
        "refunded_at": iso_time(refund.refunded_at),
    }
    if refund.code is not None:
        view["code"] = refund.code
    return view


def payout_fields(payout: Payout) -> dict[str, Any]:
    """A payout as simpay shows it."""
    view: dict[str, Any] = {
        "result": payout.status.value,
        "payout_no": payout.payout_no,
        "out_payout_no": payout.out_payout_no,
        "merchant_ref": payout.merchant_ref,
        **amount_fields(payout.amount),
        "paid_at": iso_time(payout.paid_at),
    }
    if payout.code is not None:
        view["code"] = payout.code
        view["message"] = payout.message
    return view


def admin_refund_view(refund: Refund) -> dict[str, Any]:
    return {
        **refund_fields(refund),
        "protocol": refund.protocol,
        "status": refund.status.value,
        "reason": refund.reason,
        **_deliveries(refund.deliveries.sent, refund.deliveries.acked),
    }


def admin_trade_view(merchant: MerchantAccount, trade: Trade) -> dict[str, Any]:
    return {
        "merchant": merchant.merchant_id,
        **trade_fields(trade),
        "protocol": trade.protocol,
        "status": trade.status.value,
        "subject": trade.subject,
        "directives": trade.directives.tokens(),
        "closed_at": iso_time(trade.closed_at),
        "notify_id": trade.notify_id,
        **_deliveries(trade.deliveries.sent, trade.deliveries.acked),
        "refunds": [admin_refund_view(r) for r in merchant.refunds_of(trade)],
    }


def admin_payout_view(merchant: MerchantAccount, payout: Payout) -> dict[str, Any]:
    return {
        "merchant": merchant.merchant_id,
        **payout_fields(payout),
        "protocol": payout.protocol,
        "status": payout.status.value,
        "created_at": iso_time(payout.created_at),
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
    """Money taken and paid out at the channel, per merchant and currency (every protocol together),
    to compare with what the suite recorded."""
    return {"merchants": {m.merchant_id: _currency_summary(m) for m in merchants}}
