"""Recording consumed event ids in the same transaction as their effect."""

from __future__ import annotations

from collections.abc import Sequence

from paykit.db.bulk import insert_from_arrays
from paykit.messaging.schema import inbox
from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

# Built once: executing a prepared construct with parameters skips building
# the statement and its cache key on every consumed event (a hot path).
_RECORD_EVENT = insert(inbox).on_conflict_do_nothing().returning(inbox.c.event_id)
_RECORD_EVENTS = (
    insert_from_arrays(inbox, ("event_id", "topic"), {"consumer": bindparam("consumer")})
    .on_conflict_do_nothing()
    .returning(inbox.c.event_id)
)


def first_delivery(session: Session, consumer: str, event_id: str, topic: str) -> bool:
    """True the first time `consumer` sees `event_id`; False for a replay.

    The primary key makes this race-free: two replicas handling the same
    event concurrently cannot both insert, one waits and then sees a conflict.
    """
    row = session.execute(_RECORD_EVENT, {"consumer": consumer, "event_id": event_id, "topic": topic}).first()
    return row is not None


def first_deliveries(session: Session, consumer: str, events: Sequence[tuple[str, str]]) -> set[str]:
    """Of the (event id, topic) pairs, the ids `consumer` sees for the first time, in one
    statement; an id twice in `events` is recorded once."""
    if not events:
        return set()
    rows = session.execute(
        _RECORD_EVENTS,
        {"consumer": consumer, "event_id": [e for e, _ in events], "topic": [t for _, t in events]},
    )
    return {row.event_id for row in rows}
