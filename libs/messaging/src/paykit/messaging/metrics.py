"""Prometheus metrics of the consumer loop and the outbox relay.

Consumer (labels: consumer = the loop's name, which is also its inbox name):
  paykit_consumer_messages_total{consumer, topic, outcome}   counter
      outcome: applied (first delivery, effect committed), duplicate (the inbox
      had it), dead_lettered (sent to <topic>.dlq), skipped (a type this
      consumer does not act on); counted only after the offsets were committed
  paykit_consumer_batch_duration_seconds{consumer}            histogram
  paykit_consumer_lag_messages{consumer, topic, partition}    gauge
      high watermark - the loop's position (or committed offset), per assigned
      partition, from librdkafka's cached watermarks: no broker round trip per
      refresh, at most every LAG_REFRESH_S

Outbox relay (label: relay = the relay's Kafka client id):
  paykit_outbox_unsent_events{relay}                    gauge (capped at BACKLOG_COUNT_CAP)
  paykit_outbox_oldest_unsent_age_seconds{relay}        gauge (0 when nothing waits)
  paykit_outbox_published_events_total{relay, topic}    counter (rows marked sent)
      the two gauges come from one cheap query on the partial index of unsent
      rows, at most every OUTBOX_STATS_REFRESH_S
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Iterable, Sequence

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaException, Message, TopicPartition
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

LAG_REFRESH_S = 5.0
# Until the group has assigned partitions and fetched from them there is nothing to measure:
# look again soon rather than a whole interval later (assignment() is a local call).
LAG_RETRY_S = 0.5
COMMITTED_TIMEOUT_S = 1.0
OUTBOX_STATS_REFRESH_S = 5.0
# Counting a huge backlog exactly would itself be slow; past this it only matters that it is huge.
BACKLOG_COUNT_CAP = 1_000_000
BATCH_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

APPLIED = "applied"
DUPLICATE = "duplicate"
DEAD_LETTERED = "dead_lettered"
SKIPPED = "skipped"
OUTCOMES = (APPLIED, DUPLICATE, DEAD_LETTERED, SKIPPED)

CONSUMER_MESSAGES = Counter(
    "paykit_consumer_messages_total",
    "Kafka messages a consumer loop finished with, by outcome.",
    ["consumer", "topic", "outcome"],
)
CONSUMER_BATCH_SECONDS = Histogram(
    "paykit_consumer_batch_duration_seconds",
    "Time to apply one batch: database transaction, dead letters and offset commit.",
    ["consumer"],
    buckets=BATCH_BUCKETS_S,
)
CONSUMER_LAG = Gauge(
    "paykit_consumer_lag_messages",
    "Messages in a partition not yet consumed: high watermark minus the consumer's position.",
    ["consumer", "topic", "partition"],
)
OUTBOX_UNSENT = Gauge(
    "paykit_outbox_unsent_events",
    "Outbox rows committed but not yet published to Kafka.",
    ["relay"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "paykit_outbox_oldest_unsent_age_seconds",
    "Age of the oldest unpublished outbox row (0 when none waits).",
    ["relay"],
)
OUTBOX_PUBLISHED = Counter(
    "paykit_outbox_published_events_total",
    "Outbox rows published to Kafka and marked sent.",
    ["relay", "topic"],
)


class ConsumerMetrics:
    """One consumer loop's counters; the loop calls it from its own thread only.

    Applied is what is left of a committed batch once dead letters, skipped
    types and inbox duplicates are taken out, so a batch applied twice (the
    fast path rolled back, then one savepoint per message) counts once.
    """

    def __init__(
        self,
        consumer_name: str,
        consumer: Consumer,
        topics: Sequence[str],
        lag_refresh_s: float = LAG_REFRESH_S,
    ) -> None:
        self._name = consumer_name
        self._consumer = consumer
        self._lag_refresh_s = lag_refresh_s
        self._batch_seconds = CONSUMER_BATCH_SECONDS.labels(consumer_name)
        self._skipped: Tally[str] = Tally()
        self._duplicates: Tally[str] = Tally()
        self._lag_labels: set[tuple[str, str]] = set()
        self._next_lag_refresh = 0.0
        for topic in topics:  # every series exists from the start, at 0
            for outcome in OUTCOMES:
                CONSUMER_MESSAGES.labels(consumer_name, topic, outcome)

    # -- outcomes of the batch being applied ----------------------------------------
    def begin_batch(self) -> None:
        self._skipped.clear()
        self._duplicates.clear()

    def begin_transaction(self) -> None:
        """A (re)started transaction: duplicates seen by a rolled-back one do not count."""
        self._duplicates.clear()

    def skipped(self, topic: str) -> None:
        self._skipped[topic] += 1

    def duplicate(self, topic: str) -> None:
        self._duplicates[topic] += 1

    def batch_committed(self, messages: Sequence[Message], dead: Iterable[Message], seconds: float) -> None:
        self._batch_seconds.observe(seconds)
        total = Tally(m.topic() or "" for m in messages)
        dead_letters = Tally(m.topic() or "" for m in dead)
        for topic, count in total.items():
            skipped, duplicates, dead_count = (
                self._skipped[topic],
                self._duplicates[topic],
                dead_letters[topic],
            )
            for outcome, n in (
                (APPLIED, count - skipped - duplicates - dead_count),
                (DUPLICATE, duplicates),
                (DEAD_LETTERED, dead_count),
                (SKIPPED, skipped),
            ):
                if n > 0:
                    CONSUMER_MESSAGES.labels(self._name, topic, outcome).inc(n)

    # -- lag ---------------------------------------------------------------------------
    def refresh_lag(self) -> None:
        now = time.monotonic()
        if now < self._next_lag_refresh:
            return
        try:
            measured = self._refresh_lag()
        except (KafkaException, RuntimeError):
            # A metric must never stop consumption; the next refresh tries again.
            log.debug("consumer lag not refreshed", exc_info=True, extra={"consumer": self._name})
            measured = 0
        self._next_lag_refresh = now + (
            self._lag_refresh_s if measured else min(LAG_RETRY_S, self._lag_refresh_s)
        )

    def _refresh_lag(self) -> int:
        """Set the gauge for every assigned partition whose lag is known; returns how many."""
        assigned = self._consumer.assignment()
        positions = self._consumer.position(assigned) if assigned else []
        current: set[tuple[str, str]] = set()
        committed = self._committed([tp for tp in positions if tp.offset < 0])
        for tp in positions:
            low, high = self._consumer.get_watermark_offsets(tp, cached=True) or (
                OFFSET_INVALID,
                OFFSET_INVALID,
            )
            offset = tp.offset if tp.offset >= 0 else committed.get((tp.topic, tp.partition), OFFSET_INVALID)
            if offset < 0:
                offset = low  # never committed: auto.offset.reset is earliest
            if high < 0 or offset < 0:
                continue  # no fetch answered yet: unknown, not zero
            labels = (tp.topic, str(tp.partition))
            CONSUMER_LAG.labels(self._name, *labels).set(max(high - offset, 0))
            current.add(labels)
        for gone in self._lag_labels - current:  # revoked in a rebalance
            CONSUMER_LAG.remove(self._name, *gone)
        self._lag_labels = current
        return len(current)

    def _committed(self, unconsumed: Sequence[TopicPartition]) -> dict[tuple[str, int], int]:
        """Committed offsets of partitions nothing was consumed from since they were assigned
        (one broker round trip, only for those); empty when the broker does not answer in time."""
        if not unconsumed:
            return {}
        try:
            answered = self._consumer.committed(
                [TopicPartition(tp.topic, tp.partition) for tp in unconsumed], timeout=COMMITTED_TIMEOUT_S
            )
        except KafkaException:
            return {}
        return {(tp.topic, tp.partition): tp.offset for tp in answered}


_OUTBOX_STATS = text(
    "SELECT"
    " (SELECT count(*) FROM (SELECT 1 FROM outbox WHERE sent_at IS NULL LIMIT :cap) AS capped) AS unsent,"
    # The lowest unsent id is the oldest row closely enough (ids follow commit order
    # within an aggregate) and is found through the partial index alone.
    " (SELECT extract(epoch FROM now() - created_at) FROM outbox WHERE sent_at IS NULL"
    "  ORDER BY id LIMIT 1) AS oldest_age_s"
)


class RelayMetrics:
    def __init__(self, relay_name: str, engine: Engine) -> None:
        self._name = relay_name
        self._engine = engine
        self._unsent = OUTBOX_UNSENT.labels(relay_name)
        self._oldest_age = OUTBOX_OLDEST_AGE.labels(relay_name)
        self._next_refresh = 0.0

    def published(self, topics: Iterable[str]) -> None:
        for topic, count in Tally(topics).items():
            OUTBOX_PUBLISHED.labels(self._name, topic).inc(count)

    def refresh_backlog(self) -> None:
        now = time.monotonic()
        if now < self._next_refresh:
            return
        self._next_refresh = now + OUTBOX_STATS_REFRESH_S
        try:
            with self._engine.connect() as conn:
                row = conn.execute(_OUTBOX_STATS, {"cap": BACKLOG_COUNT_CAP}).one()
        except Exception:
            # A metric must never stop the relay; the next refresh tries again.
            log.warning("outbox backlog not measured", exc_info=True, extra={"relay": self._name})
            return
        self._unsent.set(int(row.unsent))
        self._oldest_age.set(float(row.oldest_age_s or 0.0))
