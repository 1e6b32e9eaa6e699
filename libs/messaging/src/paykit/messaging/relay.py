"""The outbox relay: publishes committed outbox rows to Kafka and marks them sent.

A crash anywhere loses nothing: rows are marked sent only after Kafka
acknowledged them, so at worst a row is published twice (consumers dedupe
by event id). One relay per database publishes at a time (a transaction-
scoped advisory lock), which keeps each key's events in commit order even
when several replicas of a service run.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from paykit.messaging.kafka_config import producer_config
from paykit.messaging.metrics import RelayMetrics
from paykit.messaging.schema import outbox
from paykit.telemetry import headers_from_carrier
from sqlalchemy import Connection, Engine, bindparam, func, select, update

log = logging.getLogger(__name__)

RELAY_BATCH_SIZE = 500
RELAY_IDLE_POLL_S = 0.2
RELAY_ERROR_BACKOFF_S = 1.0
RELAY_FLUSH_TIMEOUT_S = 30.0
# Any constant shared by the relays of one database; the value is arbitrary.
RELAY_ADVISORY_LOCK_KEY = 0x5041594B4954


# Built once: the relay runs them on every pass.
_TRY_LOCK = select(func.pg_try_advisory_xact_lock(RELAY_ADVISORY_LOCK_KEY))
_UNSENT = (
    select(outbox.c.id, outbox.c.topic, outbox.c.message_key, outbox.c.payload, outbox.c.trace_headers)
    .where(outbox.c.sent_at.is_(None))
    .order_by(outbox.c.id)
    .limit(RELAY_BATCH_SIZE)
)
_MARK_SENT = (
    update(outbox).where(outbox.c.id.in_(bindparam("ids", expanding=True))).values(sent_at=func.now())
)


class RelayPublishError(Exception):
    pass


class OutboxRelay:
    def __init__(self, engine: Engine, bootstrap_servers: str, client_id: str) -> None:
        self._engine = engine
        self._producer = Producer(producer_config(bootstrap_servers, client_id))
        self._metrics = RelayMetrics(client_id, engine)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows, to publish without waiting for the poll."""
        self._wake.set()

    def publish_once(self) -> int:
        """Publish one batch of unsent rows; returns how many were published."""
        with self._engine.begin() as conn:
            topics = self._publish_locked(conn)
        # Counted once the rows marked sent have committed.
        self._metrics.published(topics)
        return len(topics)

    def _publish_locked(self, conn: Connection) -> list[str]:
        """Under the relay lock: publish a batch and mark it sent; the published rows' topics."""
        locked = conn.execute(_TRY_LOCK).scalar()
        if not locked:
            return []
        rows = conn.execute(_UNSENT).all()
        if not rows:
            return []
        errors: list[str] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                errors.append(str(err))

        for row in rows:
            self._produce(row.topic, row.message_key, row.payload, row.trace_headers, on_delivery)
        remaining = self._producer.flush(RELAY_FLUSH_TIMEOUT_S)
        if remaining or errors:
            # Rolling back leaves every row unsent; the next pass republishes
            # them (duplicates are allowed, losses are not).
            raise RelayPublishError(f"{remaining} undelivered, errors: {errors[:3]}")
        conn.execute(_MARK_SENT, {"ids": [r.id for r in rows]})
        return [r.topic for r in rows]

    def _produce(self, topic: str, key: str, value: bytes, trace: dict[str, str], cb: Any) -> None:
        while True:
            try:
                self._producer.produce(
                    topic,
                    key=key.encode(),
                    value=value,
                    headers=headers_from_carrier(trace),
                    on_delivery=cb,
                )
                return
            except BufferError:
                # The local queue is full: let deliveries drain, then retry.
                self._producer.poll(0.1)

    def run(self) -> None:
        while not self._stop.is_set():
            self._metrics.refresh_backlog()  # at most every few seconds
            try:
                published = self.publish_once()
            except Exception:
                log.exception("outbox relay pass failed; retrying")
                self._stop.wait(RELAY_ERROR_BACKOFF_S)
                continue
            if published < RELAY_BATCH_SIZE:
                self._wake.wait(RELAY_IDLE_POLL_S)
                self._wake.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="outbox-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._producer.flush(timeout_s)
