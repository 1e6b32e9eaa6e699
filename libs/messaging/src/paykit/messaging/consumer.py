"""The consumer loop: batch of Kafka messages -> one database transaction -> offsets.

Per batch: each message's event id goes into the inbox and its handler runs,
all in one transaction; the transaction commits, then the offsets are
committed. Events of types the consumer does not act on are skipped without
touching the database. A crash before the offset commit replays the batch,
and the inbox turns every replayed event into a no-op.

Failures are split in two. A message that cannot be processed (undecodable,
or its handler raises) is poison: the batch is rolled back and applied again
with one savepoint per message, and the poison goes to `<topic>.dlq` with
the reason, so it never blocks its partition. A
database that is unreachable is not the message's fault: the whole batch is
retried with capped backoff, since sending every message to the DLQ while
the database is down would be the real loss.

A consumer whose effects batch well gives a `batch_handler` instead of a
`handler`: the fast path then records the whole batch in the inbox in one
statement and hands it the first deliveries together; the slow path hands it
one event at a time. Each comes as a `Consumed`: the envelope and the W3C
carrier of its consumer span, so an effect that happens later, outside the
span (a webhook sent by a worker), can still continue the producer's trace.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from opentelemetry import trace
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.messaging.envelope import PoisonMessage, decode_envelope
from paykit.messaging.inbox import first_deliveries, first_delivery
from paykit.messaging.kafka_config import consumer_config, producer_config
from paykit.messaging.metrics import ConsumerMetrics
from paykit.messaging.topics import dlq_of
from paykit.telemetry import carrier_from_headers, extract_context, inject_carrier, tracer
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

CONSUMER_BATCH_SIZE = 200
# consume() waits this long to fill a batch: it bounds the latency each hop adds.
CONSUMER_POLL_TIMEOUT_S = 0.05
TRANSIENT_BACKOFF_START_S = 0.2
TRANSIENT_BACKOFF_MAX_S = 10.0
DLQ_FLUSH_TIMEOUT_S = 30.0
DLQ_REASON_MAX_CHARS = 2_000


@dataclass(frozen=True, slots=True)
class Consumed:
    """A first delivery as a batch handler gets it: the envelope, and the W3C carrier
    (`traceparent`, maybe `tracestate`) of the consumer span that applied it."""

    envelope: Envelope
    carrier: Mapping[str, str]


EventHandler = Callable[[Session, Envelope], None]
BatchHandler = Callable[[Session, Sequence[Consumed]], None]
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


@dataclass(frozen=True)
class DeadLetter:
    message: Message
    reason: str


class ConsumerLoop:
    def __init__(
        self,
        *,
        name: str,
        bootstrap_servers: str,
        group_id: str,
        topics: Sequence[str],
        session_factory: sessionmaker[Session],
        handler: EventHandler | None = None,
        batch_handler: BatchHandler | None = None,
        event_types: Collection[str] | None = None,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        """One of `handler` (per event) or `batch_handler` (first deliveries of a batch, in
        order). `event_types`: the types it acts on (None: all); others are acknowledged
        untouched."""
        if handler is not None and batch_handler is None:
            self._batch_handler, self._batches = _one_by_one(handler), False
        elif batch_handler is not None and handler is None:
            self._batch_handler, self._batches = batch_handler, True
        else:
            raise ValueError("give exactly one of handler and batch_handler")
        self.name = name
        self._topics = list(topics)
        self._session_factory = session_factory
        self._event_types = frozenset(event_types) if event_types is not None else None
        self._after_commit = after_commit or (lambda: None)
        self._consumer = Consumer(consumer_config(bootstrap_servers, group_id, name))
        self._dlq = Producer(producer_config(bootstrap_servers, f"{name}-dlq"))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tracer = tracer("paykit.messaging.consumer")
        self._metrics = ConsumerMetrics(name, self._consumer, self._topics)

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        self._consumer.subscribe(self._topics)
        self._thread = threading.Thread(target=self.run, name=f"consumer-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._consumer.close()
        self._dlq.flush(timeout_s)

    def run(self) -> None:
        while not self._stop.is_set():
            messages = self._consumer.consume(CONSUMER_BATCH_SIZE, CONSUMER_POLL_TIMEOUT_S)
            usable = [m for m in messages if self._usable(m)]
            if usable:
                self.process_batch(usable)
            self._metrics.refresh_lag()  # at most every few seconds

    def _usable(self, message: Message) -> bool:
        err = message.error()
        if err is None:
            return True
        if err.code() != KafkaError._PARTITION_EOF:
            log.warning("kafka consumer error", extra={"consumer": self.name, "error": str(err)})
        return False

    # -- one batch ---------------------------------------------------------
    def process_batch(self, messages: Sequence[Message]) -> None:
        started_s = time.perf_counter()
        backoff_s = TRANSIENT_BACKOFF_START_S
        while True:
            try:
                dead = self._apply(messages)
                break
            except TRANSIENT_ERRORS:
                log.exception("database unavailable; retrying batch", extra={"consumer": self.name})
                if self._stop.wait(backoff_s):
                    return  # offsets not committed: the batch is redelivered after restart
                backoff_s = min(backoff_s * 2, TRANSIENT_BACKOFF_MAX_S)
        if dead:
            self._send_to_dlq(dead)
        self._commit(messages)
        self._metrics.batch_committed(messages, [d.message for d in dead], time.perf_counter() - started_s)
        self._after_commit()

    def _apply(self, messages: Sequence[Message]) -> list[DeadLetter]:
        self._metrics.begin_batch()
        dead: list[DeadLetter] = []
        wanted: list[tuple[Message, Envelope]] = []
        for message in messages:
            try:
                envelope = decode_envelope(message.value())
            except PoisonMessage as exc:
                dead.append(DeadLetter(message, str(exc)))
                continue
            # An event nobody here acts on has no effect to deduplicate: no inbox row, no transaction.
            if self._event_types is None or envelope.event_type in self._event_types:
                wanted.append((message, envelope))
            else:
                self._metrics.skipped(message.topic() or "")
        if not wanted:
            return dead
        try:
            # Fast path: the whole batch in one transaction, no savepoint per message.
            self._metrics.begin_transaction()
            with self._session_factory() as session, session.begin():
                if self._batches:
                    self._apply_together(session, wanted)
                else:
                    for message, envelope in wanted:
                        self._apply_one(session, message, envelope)
            return dead
        except TRANSIENT_ERRORS:
            raise
        except Exception:
            log.warning("batch has a failing event; applying one by one", extra={"consumer": self.name})
        # Slow path: the batch was rolled back whole; apply it again one savepoint
        # per message, so only the failing events go to the DLQ.
        self._metrics.begin_transaction()
        with self._session_factory() as session, session.begin():
            for message, envelope in wanted:
                reason = self._apply_isolated(session, message, envelope)
                if reason is not None:
                    dead.append(DeadLetter(message, reason))
        return dead

    def _span(self, message: Message, envelope: Envelope) -> trace.Span:
        return self._tracer.start_span(
            f"consume {envelope.event_type}",
            context=extract_context(carrier_from_headers(message.headers())),
            kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.destination": message.topic() or "", "event.id": envelope.event_id},
        )

    def _apply_one(self, session: Session, message: Message, envelope: Envelope) -> None:
        with trace.use_span(self._span(message, envelope), end_on_exit=True) as span:
            if first_delivery(session, self.name, envelope.event_id, message.topic() or ""):
                self._batch_handler(session, [Consumed(envelope, inject_carrier())])
            else:
                span.set_attribute("event.duplicate", True)
                self._metrics.duplicate(message.topic() or "")

    def _apply_together(self, session: Session, wanted: Sequence[tuple[Message, Envelope]]) -> None:
        """The batch's first deliveries to the batch handler at once; one span per event
        still joins each producer's trace."""
        first = first_deliveries(session, self.name, [(e.event_id, m.topic() or "") for m, e in wanted])
        fresh: list[Consumed] = []
        spans: list[trace.Span] = []
        for message, envelope in wanted:
            span = self._span(message, envelope)
            spans.append(span)
            if envelope.event_id in first:
                first.discard(envelope.event_id)  # a twin later in the batch is a replay
                fresh.append(Consumed(envelope, inject_carrier(trace.set_span_in_context(span))))
            else:
                span.set_attribute("event.duplicate", True)
                self._metrics.duplicate(message.topic() or "")
        try:
            if fresh:
                self._batch_handler(session, fresh)
        finally:
            for span in spans:
                span.end()

    def _apply_isolated(self, session: Session, message: Message, envelope: Envelope) -> str | None:
        """Apply one message in a savepoint; returns why it is poison, or None."""
        savepoint = session.begin_nested()
        try:
            self._apply_one(session, message, envelope)
            savepoint.commit()
            return None
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:
            savepoint.rollback()
            log.exception(
                "poison message sent to DLQ",
                extra={"consumer": self.name, "event_id": envelope.event_id, "topic": message.topic()},
            )
            return f"{type(exc).__name__}: {exc}"

    def _send_to_dlq(self, dead: Sequence[DeadLetter]) -> None:
        for letter in dead:
            msg = letter.message
            original = msg.headers() or []
            headers: list[tuple[str, str | bytes | None]] = [
                *(original.items() if isinstance(original, dict) else original),
                ("dlq.reason", letter.reason[:DLQ_REASON_MAX_CHARS].encode()),
                ("dlq.consumer", self.name.encode()),
                ("dlq.source", f"{msg.topic()}/{msg.partition()}/{msg.offset()}".encode()),
            ]
            self._dlq.produce(
                dlq_of(msg.topic() or "unknown"), key=msg.key(), value=msg.value(), headers=headers
            )
        remaining = self._dlq.flush(DLQ_FLUSH_TIMEOUT_S)
        if remaining:
            # Not committing keeps the poison messages; they come back and are retried.
            raise RuntimeError(f"{remaining} dead letters not acknowledged by Kafka")

    def _commit(self, messages: Sequence[Message]) -> None:
        next_offsets: dict[tuple[str, int], int] = {}
        for msg in messages:
            tp = (msg.topic() or "", msg.partition() or 0)
            next_offsets[tp] = max(next_offsets.get(tp, 0), (msg.offset() or 0) + 1)
        # Asynchronous is safe: a commit lost in a crash only replays events the inbox dedupes.
        self._consumer.commit(
            offsets=[TopicPartition(t, p, o) for (t, p), o in next_offsets.items()],
            asynchronous=True,
        )


def _one_by_one(handler: EventHandler) -> BatchHandler:
    def handle(session: Session, consumed: Sequence[Consumed]) -> None:
        for item in consumed:
            handler(session, item.envelope)

    return handle
