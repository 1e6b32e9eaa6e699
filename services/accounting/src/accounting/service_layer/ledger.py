"""Posting what happened to payments and refunds, and releasing funds for settlement."""

from __future__ import annotations

from dataclasses import dataclass
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
    entry, record = rules.capture(fact, policy.fees, new_id(IdKind.JOURNAL_ENTRY))
    if not post(tx, [entry]):
        return None  # this event was posted before
    tx.ledger.add_capture(record, fact.at, fact.at + policy.release_after)
    return entry


def post_refund(tx: LedgerTx, fact: Refunded, policy: Policy) -> JournalEntry | None:
    record = tx.ledger.get_capture(fact.payment_id, for_update=True)
    if record is None:
        raise PostingRefused(
            f"refund {fact.refund_id}: the capture of payment {fact.payment_id} is not posted"
        )
    entry, remaining = rules.refund(fact, record, policy.fees, new_id(IdKind.JOURNAL_ENTRY))
    if not post(tx, [entry]):
        return None
    if remaining.unreleased != record.unreleased:
        tx.ledger.set_unreleased(fact.payment_id, remaining.unreleased)
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
    tx.ledger.set_unreleased(record.payment_id, record.unreleased - record.unreleased)
    return entry


def release_due(tx: LedgerTx, now: datetime, limit: int) -> int:
    due = tx.ledger.claim_due_releases(now, limit)
    for record in due:
        _release(tx, record, now)
    return len(due)
