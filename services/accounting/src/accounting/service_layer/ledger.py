"""Posting what happened to payments and refunds, and releasing funds for settlement."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from paykit.errors import InvalidArgument, NotFound
from paykit.ids import IdKind, new_id

from accounting.domain import posting_rules as rules
from accounting.domain.entries import JournalEntry
from accounting.domain.fees import FeeSchedule
from accounting.domain.posting_rules import Captured, Refunded
from accounting.service_layer.posting import PostingRefused, post
from accounting.service_layer.unit_of_work import LedgerTx


@dataclass(frozen=True)
class Policy:
    fees: FeeSchedule
    # T+N: captured funds become settleable this long after capture unless reconciled earlier.
    release_after: timedelta


def post_capture(tx: LedgerTx, fact: Captured, policy: Policy) -> JournalEntry | None:
    """None when the payment's capture was posted before, under this event id or another:
    the capture row, keyed by payment id, is inserted first and decides (race-free)."""
    tx.ledger.lock_payment(fact.payment_id)
    entry, record = rules.capture(fact, policy.fees, new_id(IdKind.JOURNAL_ENTRY))
    if not tx.ledger.add_capture(record, fact.at, fact.at + policy.release_after):
        return None
    if not post(tx, [entry]):
        raise PostingRefused(
            f"event {fact.event_id} was posted before, not as the capture of {fact.payment_id}"
        )
    for waiting in tx.ledger.take_deferred_refunds(fact.payment_id):
        post_refund(tx, waiting, policy)
    return entry


def post_refund(tx: LedgerTx, fact: Refunded, policy: Policy) -> JournalEntry | None:
    """None when the refund was posted before, under this event id or another. The capture's
    row lock serialises the refunds of a payment, so the check and the posting are race-free."""
    tx.ledger.lock_payment(fact.payment_id)
    record = tx.ledger.get_capture(fact.payment_id, for_update=True)
    if record is None:
        # Its payment's capture comes on another topic and may not be read yet: wait for it.
        tx.ledger.defer_refund(fact)
        return None
    if tx.ledger.refund_posted(fact.refund_id):
        return None
    entry, remaining = rules.refund(fact, record, policy.fees, new_id(IdKind.JOURNAL_ENTRY))
    if not post(tx, [entry]):
        return None
    tx.ledger.save_capture(remaining)
    return entry


def release_payment(tx: LedgerTx, payment_id: str, at: datetime) -> JournalEntry | None:
    """Pending -> available for a payment (reconciled, or T+N passed); None when nothing is pending."""
    if not payment_id:
        raise InvalidArgument("payment_id", "is required")
    record = tx.ledger.get_capture(payment_id, for_update=True)
    if record is None:
        raise NotFound(f"no capture of payment {payment_id} in the ledger")
    return _release(tx, record, at)


def _release(tx: LedgerTx, record: rules.CaptureRecord, at: datetime) -> JournalEntry | None:
    entry = rules.release(record, f"release:{record.payment_id}", new_id(IdKind.JOURNAL_ENTRY), at)
    if entry is None or not post(tx, [entry]):
        return None
    tx.ledger.save_capture(replace(record, unreleased=record.unreleased - record.unreleased))
    return entry


def release_due(tx: LedgerTx, now: datetime, limit: int) -> int:
    due = tx.ledger.claim_due_releases(now, limit)
    for record in due:
        _release(tx, record, now)
    return len(due)
