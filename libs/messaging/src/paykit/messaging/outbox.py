"""Writing events in the same transaction as the state change they describe."""

from __future__ import annotations

from collections.abc import Sequence

from paykit.db.bulk import insert_from_arrays
from paykit.messaging.envelope import OutgoingEvent
from paykit.messaging.schema import outbox
from paykit.telemetry import inject_carrier
from sqlalchemy import bindparam, cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

# Built once, executed with parameters: no statement construction per event.
_STAGE_EVENT = outbox.insert()
# A batch as one array per column; the trace context is the same for the whole batch.
_STAGE_MANY = insert_from_arrays(
    outbox,
    ("event_id", "event_type", "topic", "message_key", "payload"),
    {"trace_headers": cast(bindparam("trace_headers", type_=JSONB), JSONB)},
)


def add_to_outbox(session: Session, event: OutgoingEvent) -> None:
    """Stage `event` in the caller's transaction; it is published only if that commits.

    The current trace context is stored with the row so the relay, running
    later in another thread, publishes the event inside the same trace.
    """
    session.execute(
        _STAGE_EVENT,
        {
            "event_id": event.event_id,
            "event_type": event.event_type,
            "topic": event.topic,
            "message_key": event.key,
            "payload": event.value,
            "trace_headers": inject_carrier(),
        },
    )


def add_many_to_outbox(session: Session, events: Sequence[OutgoingEvent]) -> None:
    """Stage many events in one statement (a batch of postings), all in the current trace."""
    if not events:
        return
    session.execute(
        _STAGE_MANY,
        {
            "event_id": [e.event_id for e in events],
            "event_type": [e.event_type for e in events],
            "topic": [e.topic for e in events],
            "message_key": [e.key for e in events],
            "payload": [e.value for e in events],
            "trace_headers": inject_carrier(),
        },
    )
