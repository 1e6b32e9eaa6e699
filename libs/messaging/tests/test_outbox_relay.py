"""The outbox relay against a real Postgres and a real Kafka broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Message
from google.protobuf.wrappers_pb2 import StringValue
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from paykit.devstack.fixtures import read_n, read_topic
from paykit.messaging.envelope import OutgoingEvent, decode_envelope, pack, unpack
from paykit.messaging.outbox import add_to_outbox
from paykit.messaging.relay import OutboxRelay
from paykit.messaging.schema import outbox
from paykit.telemetry import setup_tracing
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

pytestmark = pytest.mark.usefixtures("msg_clean_tables")


def event(topic: str, key: str, note: str) -> OutgoingEvent:
    return pack(
        topic=topic,
        key=key,
        event_type="test.noted",
        aggregate_type="test",
        aggregate_id=key,
        payload=StringValue(value=note),
        producer="messaging-tests",
    )


def note_of(msg: Message) -> str:
    return unpack(decode_envelope(msg.value()), StringValue).value


def commit_events(engine: Engine, events: list[OutgoingEvent]) -> None:
    with Session(engine) as session, session.begin():
        for e in events:
            add_to_outbox(session, e)


@pytest.fixture
def relay(msg_engine: Engine, msg_kafka_bootstrap: str) -> Iterator[OutboxRelay]:
    r = OutboxRelay(msg_engine, msg_kafka_bootstrap, client_id="relay-test")
    yield r
    r.stop()


def test_committed_events_are_published_to_their_topic_with_their_key_in_order_and_marked_sent(
    relay: OutboxRelay,
    msg_engine: Engine,
    msg_kafka_bootstrap: str,
    msg_new_topic: Callable[..., str],
) -> None:
    orders_topic = msg_new_topic("outbox.orders", partitions=3)
    payments_topic = msg_new_topic("outbox.payments", partitions=1)
    # Interleaved keys in one transaction, a second transaction after it.
    first = [event(orders_topic, f"order-{i % 3}", f"order-{i % 3}#{i}") for i in range(9)]
    first += [event(payments_topic, "pay-1", "pay-1#0"), event(payments_topic, "pay-1", "pay-1#1")]
    second = [
        event(orders_topic, "order-0", "order-0#late"),
        event(payments_topic, "pay-1", "pay-1#2"),
    ]
    commit_events(msg_engine, first)
    commit_events(msg_engine, second)

    assert relay.publish_once() == len(first) + len(second)

    orders = read_n(msg_kafka_bootstrap, orders_topic, 10)
    payments = read_n(msg_kafka_bootstrap, payments_topic, 3)
    assert len(orders) == 10 and len(payments) == 3  # nothing published twice
    expected_by_key: dict[str, list[str]] = {}
    for e in first + second:
        expected_by_key.setdefault(e.key, []).append(unpack(decode_envelope(e.value), StringValue).value)
    by_key: dict[str, list[Message]] = {}
    for msg in orders + payments:
        by_key.setdefault(msg.key().decode(), []).append(msg)
    assert set(by_key) == {"order-0", "order-1", "order-2", "pay-1"}
    for key, msgs in by_key.items():
        # One key lives in one partition, where Kafka order is offset order.
        assert len({m.partition() for m in msgs}) == 1, key
        msgs.sort(key=lambda m: m.offset())
        assert [note_of(m) for m in msgs] == expected_by_key[key], key
    assert [note_of(m) for m in sorted(by_key["order-0"], key=lambda m: m.offset())] == [
        "order-0#0",
        "order-0#3",
        "order-0#6",
        "order-0#late",
    ]
    assert {m.topic() for m in orders} == {orders_topic}
    assert {m.topic() for m in payments} == {payments_topic}
    # The bytes on Kafka are the outbox bytes, envelope identity intact.
    sent_ids = {decode_envelope(m.value()).event_id for m in orders + payments}
    assert sent_ids == {e.event_id for e in first + second}

    with msg_engine.connect() as conn:
        sent_at = conn.execute(select(outbox.c.event_id, outbox.c.sent_at)).all()
    assert len(sent_at) == len(first) + len(second)
    assert all(row.sent_at is not None for row in sent_at)

    assert relay.publish_once() == 0


def test_second_publish_once_publishes_nothing_new(
    relay: OutboxRelay,
    msg_engine: Engine,
    msg_kafka_bootstrap: str,
    msg_new_topic: Callable[..., str],
) -> None:
    topic = msg_new_topic("outbox.once")
    commit_events(msg_engine, [event(topic, "k", "only")])
    assert relay.publish_once() == 1
    assert relay.publish_once() == 0
    # A later event is the only thing the next pass sends: the first was not resent.
    commit_events(msg_engine, [event(topic, "k", "marker")])
    assert relay.publish_once() == 1
    msgs = read_topic(msg_kafka_bootstrap, topic, until=lambda ms: any(note_of(m) == "marker" for m in ms))
    assert [note_of(m) for m in msgs] == ["only", "marker"]


def test_rolled_back_transaction_outbox_rows_are_never_published(
    relay: OutboxRelay,
    msg_engine: Engine,
    msg_kafka_bootstrap: str,
    msg_new_topic: Callable[..., str],
) -> None:
    topic = msg_new_topic("outbox.rollback")
    doomed = [event(topic, "k", "doomed-1"), event(topic, "k", "doomed-2")]
    with Session(msg_engine) as session:
        session.begin()
        for e in doomed:
            add_to_outbox(session, e)
        session.rollback()

    assert relay.publish_once() == 0
    with msg_engine.connect() as conn:
        assert conn.execute(select(outbox.c.event_id)).all() == []

    # A committed marker after the rollback: once it is on the topic, anything the
    # rolled-back transaction could have produced would be there before it.
    commit_events(msg_engine, [event(topic, "k", "marker")])
    assert relay.publish_once() == 1
    msgs = read_topic(msg_kafka_bootstrap, topic, until=lambda ms: any(note_of(m) == "marker" for m in ms))
    assert [note_of(m) for m in msgs] == ["marker"]


def test_a_transaction_that_raises_publishes_none_of_its_events(
    relay: OutboxRelay,
    msg_engine: Engine,
    msg_kafka_bootstrap: str,
    msg_new_topic: Callable[..., str],
) -> None:
    topic = msg_new_topic("outbox.raise")
    with (
        pytest.raises(RuntimeError, match="business rule"),
        Session(msg_engine) as session,
        session.begin(),
    ):
        add_to_outbox(session, event(topic, "k", "doomed"))
        raise RuntimeError("business rule refused the change")
    assert relay.publish_once() == 0
    commit_events(msg_engine, [event(topic, "k", "marker")])
    assert relay.publish_once() == 1
    msgs = read_topic(msg_kafka_bootstrap, topic, until=lambda ms: any(note_of(m) == "marker" for m in ms))
    assert [note_of(m) for m in msgs] == ["marker"]


def test_rows_written_inside_a_span_carry_its_traceparent_in_the_kafka_headers(
    relay: OutboxRelay,
    msg_engine: Engine,
    msg_kafka_bootstrap: str,
    msg_new_topic: Callable[..., str],
) -> None:
    exporter = InMemorySpanExporter()
    provider = setup_tracing("messaging-tests", SimpleSpanProcessor(exporter))
    topic = msg_new_topic("outbox.trace")
    tracer = provider.get_tracer("messaging-tests")

    with tracer.start_as_current_span("place order") as span:
        commit_events(msg_engine, [event(topic, "k", "traced")])
    ctx = span.get_span_context()
    assert ctx.is_valid
    # Outside any span: no trace context to carry.
    commit_events(msg_engine, [event(topic, "k", "untraced")])

    assert relay.publish_once() == 2
    msgs = {note_of(m): m for m in read_n(msg_kafka_bootstrap, topic, 2)}

    headers = dict(msgs["traced"].headers() or [])
    assert "traceparent" in headers
    version, trace_id, span_id, _flags = headers["traceparent"].decode().split("-")
    assert version == "00"
    assert trace_id == format(ctx.trace_id, "032x")
    assert span_id == format(ctx.span_id, "016x")
    assert "place order" in [s.name for s in exporter.get_finished_spans()]

    assert "traceparent" not in dict(msgs["untraced"].headers() or [])
