"""The faust app: one agent consuming payment.events and refund.events in batches.

At least once in, exactly once in the table. faust's `noack_take` hands the agent a batch and
acknowledges nothing by itself; the agent writes the batch in one transaction (inbox + records,
service_layer.capture) and only then acks each event, so faust's committed offset never passes
an event whose records are not committed. A crash or SIGKILL before the ack replays the
batch after restart and the inbox turns it into no-ops. (`take` would not do: it acks the
buffered events in a `finally`, also when the agent fails half-way, and a commit then skips
events that were never written.)

An event that can never be captured (undecodable, not the payload its type names, no channel
known for a refund) goes to `<topic>.dlq` with the reason before it is acked, as with the
suite's ConsumerLoop; a database that does not answer is retried with capped backoff and never
dead-lettered (that would lose the events, not the database).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import faust
from faust.types import EventT, StreamT, TopicT
from opentelemetry import trace
from paykit.db import run_blocking
from paykit.errors import invariant
from paykit.messaging.envelope import decode_envelope
from paykit.messaging.topics import dlq_of
from paykit.telemetry import carrier_from_headers, extract_context, tracer

from reconciliation.capture.translate import EVENT_TYPES, to_outcome
from reconciliation.service_layer.capture import TRANSIENT_ERRORS, Captured, CaptureWriter
from reconciliation.settings import ReconciliationSettings

log = logging.getLogger(__name__)

APP_ID: Final = "reconciliation-capture"  # the default consumer group (RECON_CAPTURE_GROUP)
# The inbox's consumer column, whatever the group: a new group replaying the topics into the
# same database finds every event already captured.
CONSUMER_NAME: Final = "reconciliation-capture"
# Offsets of acked events are committed this often; a crash replays at most this much.
COMMIT_INTERVAL_S: Final = 1.0
TRANSIENT_BACKOFF_START_S: Final = 0.2
TRANSIENT_BACKOFF_MAX_S: Final = 10.0
DLQ_REASON_MAX_CHARS: Final = 2_000


def raw_topic(app: faust.App, *names: str) -> TopicT:
    """Keys and values as bytes: the values are serialized Envelopes, decoded here."""
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        allow_empty=True,
    )


def faust_app(settings: ReconciliationSettings) -> faust.App:
    brokers = [f"kafka://{server.strip()}" for server in settings.kafka_bootstrap_servers.split(",")]
    return faust.App(
        settings.capture_group,
        broker=brokers,
        # Stateless in faust: the state is the reconciliation database, written transactionally.
        store="memory://",
        datadir=str(settings.capture_data_dir),
        autodiscover=False,
        # No HTTP server (its fixed port would collide), no leader topic, and no topic is ever
        # created from here: the topics are paykit.messaging.topics' (the broker refuses others).
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=COMMIT_INTERVAL_S,
    )


@dataclass(frozen=True)
class _Letter:
    event: EventT[Any]
    reason: str


class CaptureAgent:
    """Decodes a batch, writes it through the CaptureWriter, dead-letters poison, then acks."""

    def __init__(
        self,
        app: faust.App,
        writer: CaptureWriter,
        topics: Sequence[str],
        batch_size: int,
        batch_wait_s: float,
    ) -> None:
        self._writer = writer
        self._batch_size = batch_size
        self._batch_wait_s = batch_wait_s
        self._tracer = tracer("reconciliation.capture")
        self._dlq = {topic: raw_topic(app, dlq_of(topic)) for topic in topics}
        source = raw_topic(app, *topics)
        app.agent(source, name="capture", concurrency=1)(self.consume)

    async def consume(self, stream: StreamT[Any]) -> None:
        invariant(isinstance(stream, faust.Stream), f"faust handed the agent a {type(stream)}")
        async for events in cast(faust.Stream[Any], stream).noack_take(
            self._batch_size, within=self._batch_wait_s
        ):
            await self.handle(stream, events)

    async def handle(self, stream: StreamT[Any], events: Sequence[EventT[Any]]) -> None:
        captured: list[Captured] = []
        by_id: dict[str, EventT[Any]] = {}
        dead: list[_Letter] = []
        spans = []
        for event in events:
            try:
                envelope = decode_envelope(event.message.value)
                if envelope.event_type not in EVENT_TYPES:
                    continue  # acked untouched: nothing to record, nothing to deduplicate
                spans.append(self._span(event, envelope.event_type, envelope.event_id))
                captured.append(Captured(envelope.event_id, event.message.topic, to_outcome(envelope)))
                by_id.setdefault(envelope.event_id, event)
            except Exception as exc:  # undecodable, wrong payload: poison, whatever the exception
                dead.append(_Letter(event, f"{type(exc).__name__}: {exc}"))
        try:
            if captured:
                poison = await self._write(captured)
                dead.extend(_Letter(by_id[item.event_id], reason) for item, reason in poison)
            if dead:
                await self._dead_letter(dead)
        finally:
            for span in spans:
                span.end()
        # Only now: everything of the batch is in the database or in a DLQ.
        for event in events:
            await stream.ack(event)

    def _span(self, event: EventT[Any], event_type: str, event_id: str) -> trace.Span:
        return self._tracer.start_span(
            f"capture {event_type}",
            context=extract_context(carrier_from_headers(event.message.headers)),
            kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.destination": event.message.topic, "event.id": event_id},
        )

    async def _write(self, batch: Sequence[Captured]) -> list[tuple[Captured, str]]:
        """The batch in one transaction, or one savepoint per event if that fails; retried for
        as long as the database does not answer (until the worker stops)."""
        backoff_s = TRANSIENT_BACKOFF_START_S
        while True:
            try:
                try:
                    await run_blocking(self._writer.write, batch)
                    return []
                except TRANSIENT_ERRORS:
                    raise
                except Exception:
                    log.warning("capture batch has a failing event; applying one by one")
                    return await run_blocking(self._writer.write_each, batch)
            except TRANSIENT_ERRORS:
                log.exception("reconciliation database unavailable; retrying the capture batch")
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, TRANSIENT_BACKOFF_MAX_S)

    async def _dead_letter(self, dead: Sequence[_Letter]) -> None:
        """Every poison event on its `<topic>.dlq`, acknowledged by Kafka before the batch is
        acked; retried while Kafka does not acknowledge (a retry may write a letter twice: a
        DLQ reader deduplicates by the envelope's event id, like every consumer)."""
        for letter in dead:
            message = letter.event.message
            log.error(
                "poison event sent to DLQ",
                extra={"topic": message.topic, "offset": message.offset, "reason": letter.reason},
            )
        backoff_s = TRANSIENT_BACKOFF_START_S
        while True:
            try:
                pending = [await self._send_letter(letter) for letter in dead]
                for future in pending:
                    await future
                return
            except Exception:
                log.exception("dead-letter topic did not acknowledge; retrying")
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, TRANSIENT_BACKOFF_MAX_S)

    async def _send_letter(self, letter: _Letter) -> Any:
        message = letter.event.message
        headers = [
            *(message.headers or []),
            ("dlq.reason", letter.reason[:DLQ_REASON_MAX_CHARS].encode()),
            ("dlq.consumer", CONSUMER_NAME.encode()),
            ("dlq.source", f"{message.topic}/{message.partition}/{message.offset}".encode()),
        ]
        return await self._dlq[message.topic].send(key=message.key, value=message.value, headers=headers)
