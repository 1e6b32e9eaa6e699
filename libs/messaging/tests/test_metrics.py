"""The consumer loop's and the outbox relay's metrics, against real Postgres and Kafka."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from google.protobuf.wrappers_pb2 import StringValue
from paykit.devstack.fixtures import read_n, unique_name, wait_until
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.messaging.consumer import Consumed, ConsumerLoop
from paykit.messaging.envelope import OutgoingEvent, pack, unpack
from paykit.messaging.metrics import ConsumerMetrics, RelayMetrics
from paykit.messaging.outbox import add_to_outbox
from paykit.messaging.relay import OutboxRelay
from prometheus_client import REGISTRY
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

pytestmark = pytest.mark.usefixtures("msg_clean_tables")

EXPLODE = "test.explode"
IGNORED = "test.ignored"
POISON_BYTES = b"not an Envelope"
WAIT_S = 20.0


def event(note: str, event_type: str = "test.noted", topic: str = "unused", key: str = "k") -> OutgoingEvent:
    return pack(
        topic=topic,
        key=key,
        event_type=event_type,
        aggregate_type="test",
        aggregate_id=key,
        payload=StringValue(value=note),
        producer="messaging-metrics-tests",
    )


def record_effect(session: Session, envelope: Envelope) -> None:
    if envelope.event_type == EXPLODE:
        raise ValueError("handler refuses it")
    session.execute(
        text("INSERT INTO test_effects (event_id, note) VALUES (:event_id, :note)"),
        {"event_id": envelope.event_id, "note": unpack(envelope, StringValue).value},
    )


def record_effects(session: Session, consumed: Sequence[Consumed]) -> None:
    for item in consumed:
        record_effect(session, item.envelope)


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    for value in values:
        producer.produce(topic, key=b"k", value=value, partition=0)
    assert producer.flush(WAIT_S) == 0


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture(params=["per-event handler", "batch handler"])
def loop_factory(
    request: pytest.FixtureRequest, msg_engine: Engine, msg_kafka_bootstrap: str
) -> Iterator[Callable[[str, str], ConsumerLoop]]:
    loops: list[ConsumerLoop] = []
    batches = request.param == "batch handler"

    def make(topic: str, name: str) -> ConsumerLoop:
        loop = ConsumerLoop(
            name=name,
            bootstrap_servers=msg_kafka_bootstrap,
            group_id=unique_name("metrics-"),
            topics=[topic],
            session_factory=sessionmaker(msg_engine),
            handler=None if batches else record_effect,
            batch_handler=record_effects if batches else None,
            event_types=("test.noted", EXPLODE),
        )
        loops.append(loop)
        return loop

    yield make
    for loop in loops:
        loop.stop()


def test_each_message_is_counted_once_under_its_outcome_after_the_commit(
    loop_factory: Callable[[str, str], ConsumerLoop],
    msg_kafka_bootstrap: str,
    msg_new_topic: Callable[..., str],
) -> None:
    """applied 2, duplicate 1, dead_lettered 2 (undecodable + failing handler), skipped 1: the
    failing handler rolls the fast path back and the batch is applied again per message,
    yet nothing is counted twice."""
    topic = msg_new_topic("metrics.outcomes")
    name = unique_name("metrics-consumer-")
    first, second = event("first"), event("second")
    values = [
        first.value,
        first.value,  # a replay in the same batch
        POISON_BYTES,
        event("boom", EXPLODE).value,
        event("not ours", IGNORED).value,
        second.value,
    ]
    produce(msg_kafka_bootstrap, topic, values)
    batch = read_n(msg_kafka_bootstrap, topic, len(values))
    loop = loop_factory(topic, name)
    outcomes = ("applied", "duplicate", "dead_lettered", "skipped")
    # Declared at 0 for every outcome of every topic from the start.
    assert all(
        REGISTRY.get_sample_value(
            "paykit_consumer_messages_total", {"consumer": name, "topic": topic, "outcome": o}
        )
        == 0.0
        for o in outcomes
    )
    batches_before = sample("paykit_consumer_batch_duration_seconds_count", consumer=name)

    loop.process_batch(batch)

    counted = {
        o: sample("paykit_consumer_messages_total", consumer=name, topic=topic, outcome=o) for o in outcomes
    }
    assert counted == {"applied": 2, "duplicate": 1, "dead_lettered": 2, "skipped": 1}
    assert sample("paykit_consumer_batch_duration_seconds_count", consumer=name) - batches_before == 1
    print(f"\nconsumer metrics: one batch of {len(values)} -> {counted}, one batch timed")


def test_lag_is_the_high_watermark_minus_the_position_and_leaves_with_the_partition(
    msg_kafka_bootstrap: str, msg_new_topic: Callable[..., str]
) -> None:
    topic = msg_new_topic("metrics.lag")
    produce(msg_kafka_bootstrap, topic, [event(f"e{i}").value for i in range(5)])
    consumer = Consumer(
        {
            "bootstrap.servers": msg_kafka_bootstrap,
            "group.id": unique_name("lag-"),
            "enable.auto.commit": False,
        }
    )
    name = unique_name("lag-consumer-")
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        got: list[object] = []
        wait_until(lambda: bool(got.extend(consumer.consume(2 - len(got), 0.5)) or len(got) >= 2), WAIT_S)
        assert len(got) == 2

        metrics = ConsumerMetrics(name, consumer, [topic], lag_refresh_s=0.0)
        metrics.refresh_lag()
        assert sample("paykit_consumer_lag_messages", consumer=name, topic=topic, partition="0") == 3

        consumer.unassign()
        metrics.refresh_lag()
        lag = REGISTRY.get_sample_value(
            "paykit_consumer_lag_messages", {"consumer": name, "topic": topic, "partition": "0"}
        )
        assert lag is None, "a revoked partition's lag series is removed"
        print("\nconsumer metrics: 5 messages, 2 consumed -> lag 3; revoked -> series removed")
    finally:
        consumer.close()


def test_running_loop_reports_zero_lag_once_it_has_consumed_everything(
    loop_factory: Callable[[str, str], ConsumerLoop],
    msg_kafka_bootstrap: str,
    msg_new_topic: Callable[..., str],
) -> None:
    topic = msg_new_topic("metrics.running")
    produce(msg_kafka_bootstrap, topic, [event(f"r{i}").value for i in range(4)])
    name = unique_name("running-consumer-")
    loop = loop_factory(topic, name)
    loop.start()
    wait_until(
        lambda: sample("paykit_consumer_messages_total", consumer=name, topic=topic, outcome="applied") == 4,
        WAIT_S,
        "the loop to apply 4 messages",
    )
    wait_until(
        lambda: (
            REGISTRY.get_sample_value(
                "paykit_consumer_lag_messages", {"consumer": name, "topic": topic, "partition": "0"}
            )
            == 0.0
        ),
        WAIT_S,
        "the lag gauge to read 0",
    )


def commit_events(engine: Engine, events: list[OutgoingEvent]) -> None:
    with Session(engine) as session, session.begin():
        for e in events:
            add_to_outbox(session, e)


def test_relay_reports_backlog_oldest_age_and_published_events(
    msg_engine: Engine, msg_kafka_bootstrap: str, msg_new_topic: Callable[..., str]
) -> None:
    topic = msg_new_topic("metrics.outbox")
    relay_name = unique_name("relay-metrics-")
    commit_events(msg_engine, [event(f"o{i}", topic=topic) for i in range(3)])
    with msg_engine.begin() as conn:  # as if the relay had been down for 90 s
        conn.execute(text("UPDATE outbox SET created_at = now() - interval '90 seconds'"))

    RelayMetrics(relay_name, msg_engine).refresh_backlog()
    assert sample("paykit_outbox_unsent_events", relay=relay_name) == 3
    age_s = sample("paykit_outbox_oldest_unsent_age_seconds", relay=relay_name)
    assert 90 <= age_s < 120

    relay = OutboxRelay(msg_engine, msg_kafka_bootstrap, client_id=relay_name)
    try:
        assert relay.publish_once() == 3
    finally:
        relay.stop()
    assert sample("paykit_outbox_published_events_total", relay=relay_name, topic=topic) == 3

    RelayMetrics(relay_name, msg_engine).refresh_backlog()
    assert sample("paykit_outbox_unsent_events", relay=relay_name) == 0
    assert sample("paykit_outbox_oldest_unsent_age_seconds", relay=relay_name) == 0
    print(f"\nrelay metrics: 3 unsent, oldest {age_s:.0f} s -> published 3 -> 0 unsent, age 0")
