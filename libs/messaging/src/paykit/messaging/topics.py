"""The one declared list of Kafka topics, and the script that creates them.

`python -m paykit.messaging.topics --bootstrap HOST:PORT` creates every topic
(and its `.dlq`) that does not exist yet; running it twice changes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

TOPIC_CREATE_TIMEOUT_S = 30
DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    key: str
    description: str


ORDER_EVENTS = "order.events"
PAYMENT_EVENTS = "payment.events"
REFUND_EVENTS = "refund.events"
CHANNEL_NOTIFICATIONS = "channel.notifications"
CHANNEL_STATEMENTS = "channel.statements"
LEDGER_ENTRIES = "ledger.entries"
SETTLEMENT_EVENTS = "settlement.events"
NOTIFICATION_EVENTS = "notification.events"
RECON_DISCREPANCIES = "recon.discrepancies"

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(ORDER_EVENTS, 6, "order id", "order.created, order.paid, order.closed"),
    TopicSpec(PAYMENT_EVENTS, 6, "order id", "payment.created/succeeded/failed/flagged"),
    TopicSpec(REFUND_EVENTS, 6, "order id", "refund lifecycle"),
    TopicSpec(CHANNEL_NOTIFICATIONS, 6, "order id", "verified channel notifications"),
    TopicSpec(CHANNEL_STATEMENTS, 3, "channel", "downloaded channel statements"),
    TopicSpec(LEDGER_ENTRIES, 6, "journal entry id", "posted journal entries"),
    TopicSpec(SETTLEMENT_EVENTS, 3, "merchant id", "settlement batches"),
    TopicSpec(NOTIFICATION_EVENTS, 6, "order id", "merchant webhook delivered/dead"),
    TopicSpec(RECON_DISCREPANCIES, 3, "channel", "reconciliation discrepancies"),
)


def dlq_of(topic: str) -> str:
    return topic + DLQ_SUFFIX


def all_topic_names() -> list[str]:
    return [name for spec in TOPICS for name in (spec.name, dlq_of(spec.name))]


def create_topics(bootstrap_servers: str) -> list[str]:
    """Create the missing topics; returns the names created now."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    existing = set(admin.list_topics(timeout=TOPIC_CREATE_TIMEOUT_S).topics)
    wanted = []
    for spec in TOPICS:
        for name, partitions in ((spec.name, spec.partitions), (dlq_of(spec.name), 1)):
            if name not in existing:
                wanted.append(NewTopic(name, num_partitions=partitions, replication_factor=1))
    if not wanted:
        return []
    created = []
    for name, future in admin.create_topics(wanted, operation_timeout=TOPIC_CREATE_TIMEOUT_S).items():
        try:
            future.result(timeout=TOPIC_CREATE_TIMEOUT_S)
            created.append(name)
        except Exception as exc:
            # Another process may have created it between list and create.
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return sorted(created)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create the suite's Kafka topics.")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    args = parser.parse_args(argv)
    if not args.bootstrap:
        print("error: --bootstrap or KAFKA_BOOTSTRAP_SERVERS is required", file=sys.stderr)
        return 2
    created = create_topics(args.bootstrap)
    print(f"topics created: {len(created)} ({', '.join(created) or 'all existed'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
