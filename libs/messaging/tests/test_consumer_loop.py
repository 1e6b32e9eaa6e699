"""The consumer loop against a real Postgres and a real Kafka broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest
from confluent_kafka import Producer
from google.protobuf.wrappers_pb2 import StringValue
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from paykit.devstack.fixtures import committed_offsets, read_n, unique_name, wait_until
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.messaging.consumer import Consumed, ConsumerLoop
from paykit.messaging.envelope import OutgoingEvent, pack, unpack
from paykit.messaging.schema import inbox
from paykit.messaging.topics import dlq_of
from paykit.telemetry import headers_from_carrier, inject_carrier, setup_tracing
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

pytestmark = pytest.mark.usefixtures("msg_clean_tables")

EXPLODE = "test.explode"
POISON_BYTES = b"this is not a protobuf Envelope"
WAIT_S = 20.0


def event(note: str, event_type: str = "test.noted", key: str = "k") -> OutgoingEvent:
    return pack(
        topic="unused-by-these-tests",
        key=key,
        event_type=event_type,
        aggregate_type="test",
        aggregate_id=key,
        payload=StringValue(value=note),
        producer="messaging-tests",
    )


def record_effect(session: Session, envelope: Envelope) -> None:
    """The handler under test: one row per applied event; `test.explode` always fails."""
    note = unpack(envelope, StringValue).value
    if envelope.event_type == EXPLODE:
        raise ValueError(f"handler refuses {note}")
    session.execute(
        text("INSERT INTO test_effects (event_id, note) VALUES (:event_id, :note)"),
        {"event_id": envelope.event_id, "note": note},
    )


def record_effects(session: Session, consumed: Sequence[Consumed]) -> None:
    """The same effects from a batch handler; each call's size and carriers are kept for the tests."""
    BATCH_SIZES.append(len(consumed))
    for item in consumed:
        CARRIERS[item.envelope.event_id] = dict(item.carrier)
        record_effect(session, item.envelope)


BATCH_SIZES: list[int] = []
CARRIERS: dict[str, dict[str, str]] = {}


def produce(bootstrap: str, topic: str, values: list[bytes], key: bytes = b"k") -> None:
    """Write raw values to partition 0 of `topic`, in order, and wait for the acks."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    for value in values:
        producer.produce(topic, key=key, value=value, partition=0)
    assert producer.flush(WAIT_S) == 0


def effects(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT event_id, note FROM test_effects ORDER BY id")).all()
    return [(r.event_id, r.note) for r in rows]


def inbox_event_ids(engine: Engine, consumer: str) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(inbox.c.event_id).where(inbox.c.consumer == consumer)).scalars())


@pytest.fixture(params=["per-event handler", "batch handler"])
def make_loop(
    request: pytest.FixtureRequest, msg_engine: Engine, msg_kafka_bootstrap: str
) -> Iterator[Callable[..., ConsumerLoop]]:
    """Factory for loops on one topic; every loop made is stopped after the test. Every
    test runs with both kinds of handler: the guarantees are the same."""
    loops: list[ConsumerLoop] = []
    batches = request.param == "batch handler"
    BATCH_SIZES.clear()

    def make(
        topic: str, group_id: str, name: str = "loop-test", event_types: tuple[str, ...] | None = None
    ) -> ConsumerLoop:
        loop = ConsumerLoop(
            name=name,
            bootstrap_servers=msg_kafka_bootstrap,
            group_id=group_id,
            topics=[topic],
            session_factory=sessionmaker(msg_engine),
            handler=None if batches else record_effect,
            batch_handler=record_effects if batches else None,
            event_types=event_types,
        )
        loops.append(loop)
        return loop

    yield make
    for loop in loops:
        loop.stop()


def test_same_event_delivered_five_times_in_and_across_batches_takes_effect_once(
    make_loop: Callable[..., ConsumerLoop],
    msg_engine: Engine,
    msg_kafka_bootstrap: str,
    msg_new_topic: Callable[..., str],
) -> None:
    topic = msg_new_topic("consumer.dedupe")
    once = event("charged once")
    produce(msg_kafka_bootstrap, topic, [once.value] * 5)
    deliveries = read_n(msg_kafka_bootstrap, topic, 5)
    assert len(deliveries) == 5
    loop = make_loop(topic, unique_name("dedupe-"), name="dedupe-consumer")

    # A duplicate inside one batch, then replays in later batches.
    loop.process_batch(deliveries[0:2])
    loop.process_batch(deliveries[2:3])
    loop.process_batch(deliveries[3:5])

    assert effects(msg_engine) == [(once.event_id, "charged once")]
    assert inbox_event_ids(msg_engine, "dedupe-consumer") == [once.event_id]


def test_running_loop_applies_an_event_delivered_five_times_once(
    make_loop: Callable[..., ConsumerLoop],
    msg_engine: Engine,
    msg_kafka_bootstrap: str,
    msg_new_topic: Callable[..., str],
) -> None:
    topic = msg_new_topic("consumer.dedupe-thread")
    once = event("shipped once")
    produce(msg_kafka_bootstrap, topic, [once.value] * 5)
    group = unique_name("dedupe-thread-")
    loop = make_loop(topic, group, name="dedupe-thread-consumer")

    loop.start()
    wait_until(
        lambda: committed_offsets(msg_kafka_bootstrap, group, topic) == {0: 5},
        WAIT_S,
        "the loop to commit all five deliveries",
    )
    loop.stop()

    assert effects(msg_engine) == [(once.event_id, "shipped once")]
    assert inbox_event_ids(msg_engine, "dedupe-thread-consumer") == [once.event_id]


def test_poison_and_failing_messages_go_to_the_dlq_with_a_reason_and_the_rest_of_the_batch_applies(
    make_loop: Callable[..., ConsumerLoop],
    msg_engine: Engine,
    msg_kafka_bootstrap: str,
    msg_new_topic: Callable[..., str],
) -> None:
    topic = msg_new_topic("consumer.poison")
    before, failing, after = event("before"), event("boom", event_type=EXPLODE), event("after")
    produce(msg_kafka_bootstrap, topic, [before.value, POISON_BYTES, failing.value, after.value])
    batch = read_n(msg_kafka_bootstrap, topic, 4)
    assert len(batch) == 4
    loop = make_loop(topic, unique_name("poison-"), name="poison-consumer")

    loop.process_batch(batch)  # one batch: the poison does not abort it

    assert effects(msg_engine) == [(before.event_id, "before"), (after.event_id, "after")]
    # The failing handler's savepoint was rolled back, inbox row included: a fixed
    # handler could still apply the event if it is replayed from the DLQ.
    assert sorted(inbox_event_ids(msg_engine, "poison-consumer")) == sorted([before.event_id, after.event_id])

    dead = read_n(msg_kafka_bootstrap, dlq_of(topic), 2)
    assert len(dead) == 2
    assert [m.value() for m in dead] == [POISON_BYTES, failing.value]
    reasons = [dict(m.headers() or [])["dlq.reason"].decode() for m in dead]
    assert "Envelope" in reasons[0]
    assert reasons[1].startswith("ValueError") and "handler refuses boom" in reasons[1]
    sources = [dict(m.headers() or [])["dlq.source"].decode() for m in dead]
    assert sources == [f"{topic}/0/1", f"{topic}/0/2"]
    assert all(m.key() == b"k" for m in dead)


def test_partition_is_not_blocked_by_poison_later_messages_are_applied_by_the_running_loop(
    make_loop: Callable[..., ConsumerLoop],
    msg_engine: Engine,
    msg_kafka_bootstrap: str,
    msg_new_topic: Callable[..., str],
) -> None:
    topic = msg_new_topic("consumer.unblocked")
    failing, good = event("boom", event_type=EXPLODE), event("good")
    produce(msg_kafka_bootstrap, topic, [POISON_BYTES, failing.value])
    group = unique_name("unblocked-")
    loop = make_loop(topic, group, name="unblocked-consumer")
    loop.start()

    wait_until(
        lambda: committed_offsets(msg_kafka_bootstrap, group, topic) == {0: 2},
        WAIT_S,
        "the loop to move past the poison messages",
    )
    produce(msg_kafka_bootstrap, topic, [good.value])
    wait_until(lambda: effects(msg_engine) != [], WAIT_S, "the later good message to be applied")
    wait_until(
        lambda: committed_offsets(msg_kafka_bootstrap, group, topic) == {0: 3},
        WAIT_S,
        "the loop to commit the good message",
    )
    loop.stop()

    assert effects(msg_engine) == [(good.event_id, "good")]
    assert len(read_n(msg_kafka_bootstrap, dlq_of(topic), 2)) == 2


def test_committed_offset_moves_past_the_batch_after_process_batch(
    make_loop: Callable[..., ConsumerLoop],
    msg_engine: Engine,
    msg_kafka_bootstrap: str,
    msg_new_topic: Callable[..., str],
) -> None:
    topic = msg_new_topic("consumer.offsets", partitions=2)
    events = [event(f"e{i}", key=f"k{i}") for i in range(6)]
    producer = Producer({"bootstrap.servers": msg_kafka_bootstrap})
    for i, e in enumerate(events):
        producer.produce(topic, key=e.key.encode(), value=e.value, partition=i % 2)
    assert producer.flush(WAIT_S) == 0
    messages = read_n(msg_kafka_bootstrap, topic, 6)
    group = unique_name("offsets-")
    loop = make_loop(topic, group)
    assert all(o < 0 for o in committed_offsets(msg_kafka_bootstrap, group, topic).values())

    first_batch = [m for m in messages if m.offset() < 2]  # offsets 0-1 of both partitions
    loop.process_batch(first_batch)
    wait_until(
        lambda: committed_offsets(msg_kafka_bootstrap, group, topic) == {0: 2, 1: 2},
        WAIT_S,
        "offsets past the first batch",
    )
    loop.process_batch([m for m in messages if m.offset() >= 2])
    wait_until(
        lambda: committed_offsets(msg_kafka_bootstrap, group, topic) == {0: 3, 1: 3},
        WAIT_S,
        "offsets past the second batch",
    )
    assert sorted(note for _, note in effects(msg_engine)) == [f"e{i}" for i in range(6)]
    # The consumer's own view agrees with the broker's once the batch is committed.
    with msg_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(inbox)).scalar() == 6


def test_events_of_types_the_consumer_does_not_act_on_are_acknowledged_without_touching_the_database(
    make_loop: Callable[..., ConsumerLoop],
    msg_engine: Engine,
    msg_kafka_bootstrap: str,
    msg_new_topic: Callable[..., str],
) -> None:
    topic = msg_new_topic("consumer.types")
    ignored, acted_on = event("ignored", event_type="test.other"), event("acted on")
    produce(msg_kafka_bootstrap, topic, [ignored.value, acted_on.value])
    deliveries = read_n(msg_kafka_bootstrap, topic, 2)
    loop = make_loop(topic, unique_name("group"), name="types-test", event_types=("test.noted",))
    loop.process_batch(deliveries)
    assert effects(msg_engine) == [(acted_on.event_id, "acted on")]
    assert inbox_event_ids(msg_engine, "types-test") == [acted_on.event_id]


def test_a_batch_handler_gets_the_first_deliveries_of_a_batch_together(
    msg_engine: Engine, msg_kafka_bootstrap: str, msg_new_topic: Callable[..., str]
) -> None:
    topic = msg_new_topic("consumer.together")
    first, second, replayed = event("first"), event("second"), event("replayed")
    produce(msg_kafka_bootstrap, topic, [replayed.value])
    produce(msg_kafka_bootstrap, topic, [first.value, replayed.value, second.value, first.value])
    messages = read_n(msg_kafka_bootstrap, topic, 5)
    loop = ConsumerLoop(
        name="together-consumer",
        bootstrap_servers=msg_kafka_bootstrap,
        group_id=unique_name("together-"),
        topics=[topic],
        session_factory=sessionmaker(msg_engine),
        batch_handler=record_effects,
    )
    try:
        BATCH_SIZES.clear()
        loop.process_batch(messages[:1])
        loop.process_batch(messages[1:])
        loop.process_batch(messages[1:])  # all replays: the handler is not called
    finally:
        loop.stop()

    # The second batch: the replay and the twin of `first` are dropped, two events in one call.
    assert BATCH_SIZES == [1, 2]
    assert [note for _, note in effects(msg_engine)] == ["replayed", "first", "second"]


def test_a_loop_needs_exactly_one_kind_of_handler(msg_engine: Engine, msg_kafka_bootstrap: str) -> None:
    for handlers in ({}, {"handler": record_effect, "batch_handler": record_effects}):
        with pytest.raises(ValueError, match="exactly one"):
            ConsumerLoop(
                name="bad",
                bootstrap_servers=msg_kafka_bootstrap,
                group_id="bad",
                topics=["t"],
                session_factory=sessionmaker(msg_engine),
                **handlers,  # type: ignore[arg-type]
            )


def test_a_batch_handler_gets_each_events_consumer_span_carrier_in_its_producers_trace(
    msg_engine: Engine, msg_kafka_bootstrap: str, msg_new_topic: Callable[..., str]
) -> None:
    """What the batch handler stores with an effect (a webhook sent later) continues the
    producer's trace from the consumer span of that very event, not from the batch."""
    exporter = InMemorySpanExporter()
    provider = setup_tracing("messaging-tests", SimpleSpanProcessor(exporter))
    producer_tracer = provider.get_tracer("messaging-tests")
    topic = msg_new_topic("consumer.carriers")
    events = [event("traced one"), event("traced two"), event("untraced")]
    producer = Producer({"bootstrap.servers": msg_kafka_bootstrap})
    producer_spans = []
    for e in events[:2]:
        with producer_tracer.start_as_current_span(f"produce {e.event_id}") as span:
            headers = headers_from_carrier(inject_carrier())
            producer.produce(topic, value=e.value, partition=0, headers=headers)
        producer_spans.append(span.get_span_context())
    producer.produce(topic, value=events[2].value, partition=0)
    assert producer.flush(WAIT_S) == 0
    loop = ConsumerLoop(
        name="carrier-consumer",
        bootstrap_servers=msg_kafka_bootstrap,
        group_id=unique_name("carriers-"),
        topics=[topic],
        session_factory=sessionmaker(msg_engine),
        batch_handler=record_effects,
    )
    CARRIERS.clear()
    try:
        loop.process_batch(read_n(msg_kafka_bootstrap, topic, 3))
    finally:
        loop.stop()

    consumer_spans = {
        s.attributes["event.id"]: s
        for s in exporter.get_finished_spans()
        if s.name == "consume test.noted" and s.attributes is not None
    }
    for e, produced in zip(events[:2], producer_spans, strict=True):
        _version, trace_id, span_id, _flags = CARRIERS[e.event_id]["traceparent"].split("-")
        consumed = consumer_spans[e.event_id]
        assert trace_id == format(produced.trace_id, "032x")
        assert span_id == format(consumed.context.span_id, "016x")
        assert consumed.parent is not None and consumed.parent.span_id == produced.span_id
    # No producer trace: the consumer span starts one of its own, and its carrier says so.
    untraced = CARRIERS[events[2].event_id]["traceparent"].split("-")[1]
    assert untraced not in {format(p.trace_id, "032x") for p in producer_spans}
