"""acquire_kafka against a real broker: local KRaft from jars here, a container under Docker."""

from __future__ import annotations

import json
import pathlib
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer

# NewTopic is documented here but only re-exported implicitly (strict mypy flags it).
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from paykit.devstack.kafka import ENV_BOOTSTRAP_SERVERS, acquire_kafka
from paykit.devstack.procs import pid_alive, port_open

TOPIC = "devstack.smoke"
PARTITIONS = 3
MESSAGE_COUNT = 10
ADMIN_TIMEOUT_S = 15.0
FLUSH_TIMEOUT_S = 15.0
CONSUME_DEADLINE_S = 30.0
# After the expected messages arrived, keep polling this long to prove there are no extras.
QUIET_PERIOD_S = 1.0
POLL_S = 0.5


def _expected() -> dict[bytes, bytes]:
    return {f"order-{i}".encode(): f"amount={i * 100}".encode() for i in range(MESSAGE_COUNT)}


def _create_topic(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=1)
    futures = admin.create_topics([topic])
    futures[TOPIC].result(timeout=ADMIN_TIMEOUT_S)
    metadata = admin.list_topics(topic=TOPIC, timeout=ADMIN_TIMEOUT_S)
    assert len(metadata.topics[TOPIC].partitions) == PARTITIONS


def _produce(bootstrap: str, messages: dict[bytes, bytes]) -> None:
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, value in messages.items():
        producer.produce(TOPIC, key=key, value=value, on_delivery=on_delivery)
    assert producer.flush(FLUSH_TIMEOUT_S) == 0
    assert errors == []


def _consume(bootstrap: str, count: int) -> list[tuple[bytes, bytes]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "devstack-smoke",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([TOPIC])
    received: list[tuple[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + CONSUME_DEADLINE_S
        quiet_until: float | None = None
        while time.monotonic() < deadline:
            if quiet_until is not None and time.monotonic() >= quiet_until:
                break
            msg = consumer.poll(POLL_S)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            key, value = msg.key(), msg.value()
            assert isinstance(key, bytes) and isinstance(value, bytes)
            received.append((key, value))
            if len(received) == count and quiet_until is None:
                quiet_until = time.monotonic() + QUIET_PERIOD_S
    finally:
        consumer.close()
    return received


def test_acquire_produce_consume_stop(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Always exercise a broker this test starts (not one someone configured).
    monkeypatch.delenv(ENV_BOOTSTRAP_SERVERS, raising=False)
    server, stop = acquire_kafka(tmp_path)
    try:
        _create_topic(server.bootstrap_servers)
        expected = _expected()
        _produce(server.bootstrap_servers, expected)
        received = _consume(server.bootstrap_servers, len(expected))
        record_path = tmp_path / "kafka.json"
        record = json.loads(record_path.read_text()) if record_path.exists() else None
    finally:
        stop()

    assert sorted(received) == sorted(expected.items())
    if record is not None:  # the local broker (no Docker here): its JVM is gone
        assert not pid_alive(int(record["pid"]))
    host, port = server.bootstrap_servers.rsplit(":", 1)
    assert not port_open(int(port), host)
