"""The capture's use case: outcomes of payments and refunds -> internal records, exactly once.

Each batch is one transaction: the events' ids go into the inbox (a replayed event finds its
id there and changes nothing) and their records are written, both or neither. The consumer
acknowledges the batch to Kafka only after this commits, so a crash anywhere replays events
the inbox turns into no-ops: at least once in, exactly once in the table.

Which state of a payment or refund the record keeps: service_layer.record_state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from paykit.messaging.envelope import PoisonMessage
from paykit.messaging.inbox import first_deliveries
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.adapters.repository import RecordRow
from reconciliation.domain import InternalRecord, RecordKind, RecordStatus
from reconciliation.service_layer.record_state import replaces
from reconciliation.service_layer.unit_of_work import SessionTx
from reconciliation.settings import BusinessDays

# The database is unreachable: not the events' fault, so the batch is retried, never dead-lettered.
TRANSIENT_ERRORS: Final = (OperationalError, InterfaceError)


class UnknownChannel(PoisonMessage):
    """A refund outcome whose channel nothing captured names (no refund.created, no payment)."""


@dataclass(frozen=True)
class Outcome:
    """What one event says about one payment or refund. `channel` is None when the event does
    not name it (refund.failed): the capture then takes the refund's (or payment's) channel."""

    kind: RecordKind
    our_id: str
    reference: str
    channel: str | None
    channel_txn_id: str | None
    amount_minor: int
    currency: str
    status: RecordStatus
    occurred_at: datetime
    merchant_id: str
    order_id: str
    event_id: str
    event_type: str
    attributes: dict[str, Any] = field(default_factory=dict)


Key = tuple[str, str]


def _key(outcome: Outcome) -> Key:
    return (outcome.kind.value, outcome.our_id)


def latest_of(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """One outcome per (kind, our_id), by the same rule as the table (first of the highest rank)."""
    chosen: dict[Key, Outcome] = {}
    for outcome in outcomes:
        held = chosen.get(_key(outcome))
        if held is None or replaces(outcome.status, held.status):
            chosen[_key(outcome)] = outcome
    return list(chosen.values())


def _channels(tx: SessionTx, outcomes: Sequence[Outcome], winners: Sequence[Outcome]) -> dict[Key, str]:
    """The channel of every winner that does not name one: its refund's (refund.created came
    first on the same partition), else its payment's; from this batch or the table."""
    known: dict[Key, str] = {}
    for o in outcomes:
        if o.channel:
            known.setdefault(_key(o), o.channel)
    missing = [o for o in winners if not o.channel and _key(o) not in known]
    if missing:
        stored = tx.records.channels_of(
            refund_ids={o.our_id for o in missing}, payment_ids={o.reference for o in missing}
        )
        for key, stored_channel in stored.items():
            known.setdefault(key, stored_channel)
    resolved: dict[Key, str] = {}
    for outcome in winners:
        channel = (
            outcome.channel
            or known.get(_key(outcome))
            or known.get((RecordKind.PAYMENT.value, outcome.reference))
        )
        if not channel:
            raise UnknownChannel(
                f"{outcome.event_type} {outcome.event_id}: no channel known for {outcome.kind.value} "
                f"{outcome.our_id} (neither its refund.created nor payment {outcome.reference} was captured)"
            )
        resolved[_key(outcome)] = channel
    return resolved


def capture(tx: SessionTx, outcomes: Sequence[Outcome], days: BusinessDays, now: datetime) -> int:
    """Write the latest state of each payment and refund the outcomes speak of; returns how many
    records were offered to the table (a lower-ranked one then changes nothing)."""
    winners = latest_of(outcomes)
    channels = _channels(tx, outcomes, winners)
    rows = []
    for outcome in winners:
        channel = channels[_key(outcome)]
        record = InternalRecord(
            channel=channel,
            business_day=days.day_of(channel, outcome.occurred_at),
            kind=outcome.kind,
            our_id=outcome.our_id,
            reference=outcome.reference,
            channel_txn_id=outcome.channel_txn_id,
            amount_minor=outcome.amount_minor,
            currency=outcome.currency,
            fee_minor=None,
            status=outcome.status,
            occurred_at=outcome.occurred_at,
        )
        rows.append(
            RecordRow(record, outcome.merchant_id, outcome.order_id, outcome.event_id, outcome.event_type,
                      outcome.attributes)
        )  # fmt: skip
    tx.records.save_latest(rows, now)
    return len(rows)


@dataclass(frozen=True)
class Captured:
    """One consumed event: its id and topic (for the inbox) and the outcome it states (None for
    an event with nothing to record, which is still recorded as seen)."""

    event_id: str
    topic: str
    outcome: Outcome | None


class CaptureWriter:
    """Applies batches of consumed events in one transaction each (module docstring)."""

    def __init__(self, sessions: sessionmaker[Session], consumer: str, days: BusinessDays) -> None:
        self._sessions = sessions
        self.consumer = consumer
        self._days = days

    def write(self, batch: Sequence[Captured]) -> int:
        """All or nothing; returns the records offered. Raises what went wrong (a transient
        database error, or an event that cannot be captured: see write_each)."""
        with self._sessions() as session, session.begin():
            return self._apply(SessionTx(session), batch)

    def write_each(self, batch: Sequence[Captured]) -> list[tuple[Captured, str]]:
        """The slow path after a failed batch: one savepoint per event, so only the events that
        cannot be captured are returned, with why, for the dead-letter topic."""
        poison: list[tuple[Captured, str]] = []
        with self._sessions() as session, session.begin():
            tx = SessionTx(session)
            for item in batch:
                savepoint = session.begin_nested()
                try:
                    self._apply(tx, [item])
                    savepoint.commit()
                except TRANSIENT_ERRORS:
                    raise
                except Exception as exc:
                    savepoint.rollback()
                    poison.append((item, f"{type(exc).__name__}: {exc}"))
        return poison

    def _apply(self, tx: SessionTx, batch: Sequence[Captured]) -> int:
        fresh = first_deliveries(tx.session, self.consumer, [(c.event_id, c.topic) for c in batch])
        outcomes = []
        for item in batch:
            if item.event_id in fresh:
                fresh.discard(item.event_id)  # a twin later in the batch is a replay
                if item.outcome is not None:
                    outcomes.append(item.outcome)
        return capture(tx, outcomes, self._days, datetime.now(UTC))
