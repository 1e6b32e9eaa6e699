"""Helpers for tests that run against the real local Postgres and Kafka.

Plain functions (no pytest import) so any conftest can build its fixtures on
them: the run dir convention, throwaway databases and topics, and bounded
reads of a topic. Everything here acts only on what the caller names.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
import secrets
import time
from collections.abc import Callable, Iterable

import psycopg2
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from paykit.devstack.postgres import PostgresServer, ensure_database
from paykit.messaging.topics import dlq_of
from psycopg2 import sql

# Every bounded wait in these helpers; tests stay well under their own timeouts.
DEFAULT_WAIT_S = 20.0
TOPIC_ADMIN_TIMEOUT_S = 30.0
POLL_S = 0.1
CONNECT_TIMEOUT_S = 5


def repo_root() -> pathlib.Path:
    """The checkout root: the folder holding both libs/ and services/."""
    for parent in pathlib.Path(__file__).resolve().parents:
        if (parent / "libs").is_dir() and (parent / "services").is_dir():
            return parent
    raise RuntimeError("cannot find the repository root (a folder holding libs/ and services/)")


def run_dir_for(name: str) -> pathlib.Path:
    """`<repo>/.run/<name>` (git-ignored). Each run dir gets its own Postgres cluster and broker."""
    run_dir = repo_root() / ".run" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


# Concurrent test sessions wanting the same run dir get numbered siblings instead.
MAX_RUN_DIR_SLOTS = 8
RUN_DIR_LOCK = ".session.lock"


def claim_run_dir(name: str) -> tuple[pathlib.Path, Callable[[], None]]:
    """A run dir this process alone uses until it calls the returned release function.

    acquire_postgres / acquire_kafka stop whatever server a previous user of the
    same run dir left running, so two pytest sessions sharing `.run/<name>` would
    stop each other's servers. The first free slot wins: `.run/<name>`, else
    `.run/<name>-1`, `.run/<name>-2`, ... Slots are stable names, so each keeps its
    initialised Postgres cluster across runs. The lock is an flock on a file in the
    run dir: it dies with the process, so a crashed session never blocks a slot.
    """
    for slot in range(MAX_RUN_DIR_SLOTS):
        run_dir = run_dir_for(name if slot == 0 else f"{name}-{slot}")
        fd = os.open(run_dir / RUN_DIR_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue

        def release(fd: int = fd) -> None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

        return run_dir, release
    raise RuntimeError(f"all {MAX_RUN_DIR_SLOTS} run dir slots for {name!r} are in use")


def unique_name(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(5)}"


# --- Postgres -----------------------------------------------------------------------


def create_fresh_database(server: PostgresServer, prefix: str) -> tuple[str, str]:
    """A new, empty database named `<prefix><random>`; returns (name, url)."""
    name = unique_name(prefix)
    return name, ensure_database(server, name)


def drop_database(server: PostgresServer, name: str) -> None:
    """DROP DATABASE name, disconnecting whoever is still connected (PostgreSQL 13+)."""
    conn = psycopg2.connect(server.admin_url, connect_timeout=CONNECT_TIMEOUT_S)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        conn.close()


# --- Kafka --------------------------------------------------------------------------


def create_kafka_topics(bootstrap: str, partitions_by_name: dict[str, int]) -> None:
    """Create exactly these topics (the broker does not auto-create); raise if one fails."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(n, num_partitions=p, replication_factor=1) for n, p in partitions_by_name.items()]
    futures = admin.create_topics(new, operation_timeout=TOPIC_ADMIN_TIMEOUT_S)
    for future in futures.values():
        future.result(timeout=TOPIC_ADMIN_TIMEOUT_S)
    # Creation is acknowledged by the controller; wait until metadata shows every partition.
    wait_until(
        lambda: _all_partitions_known(admin, partitions_by_name),
        TOPIC_ADMIN_TIMEOUT_S,
        f"topics {sorted(partitions_by_name)} to appear in metadata",
    )


def _all_partitions_known(admin: AdminClient, partitions_by_name: dict[str, int]) -> bool:
    topics = admin.list_topics(timeout=TOPIC_ADMIN_TIMEOUT_S).topics
    for name, partitions in partitions_by_name.items():
        meta = topics.get(name)
        if meta is None or meta.error is not None or len(meta.partitions) != partitions:
            return False
        if any(p.leader < 0 for p in meta.partitions.values()):
            return False
    return True


def create_test_topic(bootstrap: str, prefix: str, partitions: int = 1) -> str:
    """A new topic `<prefix><random>` plus its `.dlq` (one partition); returns its name."""
    name = unique_name(prefix)
    create_kafka_topics(bootstrap, {name: partitions, dlq_of(name): 1})
    return name


def delete_kafka_topics(bootstrap: str, names: Iterable[str]) -> None:
    names = list(names)
    if not names:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(names, operation_timeout=TOPIC_ADMIN_TIMEOUT_S).values():
        with contextlib.suppress(Exception):  # already gone: fine for clean-up
            future.result(timeout=TOPIC_ADMIN_TIMEOUT_S)


def partition_count(bootstrap: str, topic: str) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return len(admin.list_topics(topic, timeout=TOPIC_ADMIN_TIMEOUT_S).topics[topic].partitions)


def read_topic(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[Message]], bool],
    timeout_s: float = DEFAULT_WAIT_S,
) -> list[Message]:
    """Every message of `topic` from the beginning (all partitions, no consumer group
    offsets involved) until `until(messages)` holds; TimeoutError after `timeout_s`."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_name("test-reader-"),
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    try:
        partitions = partition_count(bootstrap, topic)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while not until(messages):
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"after {timeout_s:.0f}s, {topic} had {len(messages)} messages and the "
                    "expected condition did not hold"
                )
            for msg in consumer.consume(100, POLL_S):
                err = msg.error()
                if err is None:
                    messages.append(msg)
                elif err.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(f"consuming {topic}: {err}")
        return messages
    finally:
        consumer.close()


def read_n(bootstrap: str, topic: str, n: int, timeout_s: float = DEFAULT_WAIT_S) -> list[Message]:
    """At least `n` messages of `topic` from the beginning."""
    return read_topic(bootstrap, topic, until=lambda msgs: len(msgs) >= n, timeout_s=timeout_s)


def committed_offsets(bootstrap: str, group_id: str, topic: str) -> dict[int, int]:
    """The group's committed next offset per partition (negative: nothing committed)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, "enable.auto.commit": False})
    try:
        tps = [TopicPartition(topic, p) for p in range(partition_count(bootstrap, topic))]
        return {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=TOPIC_ADMIN_TIMEOUT_S)}
    finally:
        consumer.close()


# --- waiting ------------------------------------------------------------------------


def wait_until(cond: Callable[[], bool], timeout_s: float = DEFAULT_WAIT_S, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(POLL_S)
