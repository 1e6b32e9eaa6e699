"""Posting rules (no I/O): business facts in, balanced journal entries out.

A captured payment of 100.00 with a 0.60 merchant fee and a 0.38 channel fee:
    Dr channel clearing 100.00 / Cr merchant payable (pending) 99.40 / Cr fee revenue 0.60
    Dr channel fee expense 0.38 / Cr channel clearing 0.38
A refund takes the refunded amount (less the merchant fee returned on it, by
policy) from the merchant, pending part of that payment first, then
available. A payment's refunds never add up to more than its amount. A
duplicate payment never touches the merchant: it is owed back to the payer
(refunds payable) until its automatic refund goes out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from paykit.errors import FailedPrecondition
from paykit.money import Money

from accounting.domain import accounts as chart
from accounting.domain.accounts import Side
from accounting.domain.entries import EntryKind, JournalEntry, Line, reversal_lines
from accounting.domain.fees import FeeSchedule, RefundFee


@dataclass(frozen=True)
class Captured:
    event_id: str
    payment_id: str
    merchant_id: str
    channel: str
    amount: Money
    at: datetime
    duplicate: bool = False


@dataclass(frozen=True)
class CaptureRecord:
    """What the ledger remembers of a capture for its later refunds and release."""

    payment_id: str
    merchant_id: str
    channel: str
    gross: Money
    net: Money
    unreleased: Money
    duplicate: bool
    refunded: Money

    @property
    def refundable(self) -> Money:
        return self.gross - self.refunded


@dataclass(frozen=True)
class Refunded:
    event_id: str
    refund_id: str
    payment_id: str
    merchant_id: str
    channel: str
    amount: Money
    at: datetime
    automatic: bool = False


def _lines(*items: tuple[chart.Account, Side, Money]) -> tuple[Line, ...]:
    # Zero amounts (a 0 bps fee) are no lines at all.
    return tuple(Line(account, side, amount) for account, side, amount in items if amount.is_positive)


def capture(fact: Captured, fees: FeeSchedule, entry_id: str) -> tuple[JournalEntry, CaptureRecord]:
    cur = fact.amount.currency
    clearing = chart.channel_clearing(fact.channel, cur)
    if fact.duplicate:
        lines = _lines(
            (clearing, Side.DEBIT, fact.amount), (chart.refunds_payable(cur), Side.CREDIT, fact.amount)
        )
        record = CaptureRecord(
            fact.payment_id,
            fact.merchant_id,
            fact.channel,
            fact.amount,
            Money.zero(cur),
            Money.zero(cur),
            True,
            Money.zero(cur),
        )
        entry = JournalEntry(
            entry_id,
            fact.event_id,
            EntryKind.DUPLICATE_CAPTURE,
            fact.payment_id,
            lines,
            fact.at,
            description=f"duplicate payment {fact.payment_id} owed back to the payer",
        )
        return entry, record
    merchant_fee = fees.merchant_fee(fact.merchant_id, fact.amount)
    channel_fee = fees.channel_fee(fact.channel, fact.amount)
    net = fact.amount - merchant_fee
    lines = _lines(
        (clearing, Side.DEBIT, fact.amount),
        (chart.merchant_pending(fact.merchant_id, cur), Side.CREDIT, net),
        (chart.fee_revenue(cur), Side.CREDIT, merchant_fee),
        (chart.channel_fee_expense(fact.channel, cur), Side.DEBIT, channel_fee),
        (clearing, Side.CREDIT, channel_fee),
    )
    entry = JournalEntry(
        entry_id,
        fact.event_id,
        EntryKind.CAPTURE,
        fact.payment_id,
        lines,
        fact.at,
        description=f"payment {fact.payment_id} captured at {fact.channel}",
    )
    record = CaptureRecord(
        fact.payment_id, fact.merchant_id, fact.channel, fact.amount, net, net, False, Money.zero(cur)
    )
    return entry, record


def refund(
    fact: Refunded, capture_record: CaptureRecord, fees: FeeSchedule, entry_id: str
) -> tuple[JournalEntry, CaptureRecord]:
    """The refund's entry, and the capture record with its refunded total raised and its
    pending part reduced. Refused when the payment has less than this left to refund."""
    cur = fact.amount.currency
    if cur != capture_record.gross.currency:
        raise FailedPrecondition(
            f"refund {fact.refund_id} is in {cur}, its payment in {capture_record.gross.currency}"
        )
    if (fact.merchant_id, fact.channel) != (capture_record.merchant_id, capture_record.channel):
        # The refund's accounts come from its own fields: never take one merchant's money
        # for another merchant's payment.
        raise FailedPrecondition(
            f"refund {fact.refund_id} names {fact.merchant_id} at {fact.channel}; its payment "
            f"{fact.payment_id} was captured for {capture_record.merchant_id} at {capture_record.channel}"
        )
    if fact.amount > capture_record.refundable:
        raise FailedPrecondition(
            f"refund {fact.refund_id} of {fact.amount} exceeds what is left to refund of payment "
            f"{fact.payment_id}: {capture_record.refundable} of {capture_record.gross}"
        )
    refunded = capture_record.refunded + fact.amount
    clearing = chart.channel_clearing(fact.channel, cur)
    if capture_record.duplicate or fact.automatic:
        lines = _lines(
            (chart.refunds_payable(cur), Side.DEBIT, fact.amount), (clearing, Side.CREDIT, fact.amount)
        )
        entry = JournalEntry(
            entry_id,
            fact.event_id,
            EntryKind.DUPLICATE_REFUND,
            fact.refund_id,
            lines,
            fact.at,
            description=f"duplicate payment {fact.payment_id} returned to the payer",
        )
        return entry, replace(capture_record, refunded=refunded)
    fee_back = _fee_returned(fact, capture_record, fees)
    from_merchant = fact.amount - fee_back
    from_pending = Money(min(capture_record.unreleased.minor, from_merchant.minor), cur)
    from_available = from_merchant - from_pending
    lines = _lines(
        (chart.merchant_pending(fact.merchant_id, cur), Side.DEBIT, from_pending),
        (chart.merchant_available(fact.merchant_id, cur), Side.DEBIT, from_available),
        (chart.fee_revenue(cur), Side.DEBIT, fee_back),
        (clearing, Side.CREDIT, fact.amount),
    )
    entry = JournalEntry(
        entry_id,
        fact.event_id,
        EntryKind.REFUND,
        fact.refund_id,
        lines,
        fact.at,
        description=f"refund {fact.refund_id} of payment {fact.payment_id}",
    )
    remaining = replace(
        capture_record, unreleased=capture_record.unreleased - from_pending, refunded=refunded
    )
    return entry, remaining


def _fee_returned(fact: Refunded, capture_record: CaptureRecord, fees: FeeSchedule) -> Money:
    """The merchant fee a refund returns: the fee on everything refunded so far minus the fee
    on what was refunded before, capped at the fee charged. Rounding each refund's fee on its
    own would return up to a minor unit per refund more than was charged (with UP rounding a
    payment refunded unit by unit would take nothing back from the merchant); this way
    refunds in pieces return exactly what one refund of their total would."""
    cur = fact.amount.currency
    if fees.terms(fact.merchant_id).refund_fee is RefundFee.KEEP:
        return Money.zero(cur)
    charged = (capture_record.gross - capture_record.net).minor
    before = min(fees.merchant_fee(fact.merchant_id, capture_record.refunded).minor, charged)
    after = min(fees.merchant_fee(fact.merchant_id, capture_record.refunded + fact.amount).minor, charged)
    return Money(after - before, cur)


def release(record: CaptureRecord, event_id: str, entry_id: str, at: datetime) -> JournalEntry | None:
    """Pending -> available for what is left of a capture; None when nothing is left."""
    if not record.unreleased.is_positive:
        return None
    cur = record.unreleased.currency
    lines = _lines(
        (chart.merchant_pending(record.merchant_id, cur), Side.DEBIT, record.unreleased),
        (chart.merchant_available(record.merchant_id, cur), Side.CREDIT, record.unreleased),
    )
    return JournalEntry(
        entry_id,
        event_id,
        EntryKind.RELEASE,
        record.payment_id,
        lines,
        at,
        description=f"funds of payment {record.payment_id} released for settlement",
    )


def settlement(settlement_id: str, merchant: str, amount: Money, entry_id: str, at: datetime) -> JournalEntry:
    cur = amount.currency
    lines = _lines(
        (chart.merchant_available(merchant, cur), Side.DEBIT, amount),
        (chart.merchant_in_transit(merchant, cur), Side.CREDIT, amount),
    )
    return JournalEntry(
        entry_id,
        f"stl:{settlement_id}",
        EntryKind.SETTLEMENT,
        settlement_id,
        lines,
        at,
        description=f"settlement {settlement_id} to {merchant}",
    )


def payout(settlement_id: str, merchant: str, amount: Money, entry_id: str, at: datetime) -> JournalEntry:
    cur = amount.currency
    lines = _lines(
        (chart.merchant_in_transit(merchant, cur), Side.DEBIT, amount),
        (chart.settlement_bank(cur), Side.CREDIT, amount),
    )
    return JournalEntry(
        entry_id,
        f"payout:{settlement_id}",
        EntryKind.PAYOUT,
        settlement_id,
        lines,
        at,
        description=f"settlement {settlement_id} paid out to {merchant}",
    )


def payout_failed(
    settlement_id: str, merchant: str, amount: Money, entry_id: str, at: datetime
) -> JournalEntry:
    cur = amount.currency
    lines = _lines(
        (chart.merchant_in_transit(merchant, cur), Side.DEBIT, amount),
        (chart.merchant_available(merchant, cur), Side.CREDIT, amount),
    )
    return JournalEntry(
        entry_id,
        f"payout:{settlement_id}",
        EntryKind.PAYOUT_FAILED,
        settlement_id,
        lines,
        at,
        description=f"payout of settlement {settlement_id} refused; available again",
    )


def reversal(
    original: JournalEntry, request_key: str, entry_id: str, at: datetime, reason: str, actor: str
) -> JournalEntry:
    if original.kind is EntryKind.REVERSAL:
        raise FailedPrecondition(f"entry {original.entry_id} is a reversal; post an adjustment instead")
    return JournalEntry(
        entry_id,
        f"rev:{request_key}",
        EntryKind.REVERSAL,
        original.reference,
        reversal_lines(original),
        at,
        description=f"reversal of {original.entry_id}",
        actor=actor,
        reason=reason,
        reverses_entry_id=original.entry_id,
    )
