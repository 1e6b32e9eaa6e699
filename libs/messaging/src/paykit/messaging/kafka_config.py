"""confluent-kafka client settings shared by every producer and consumer here."""

from __future__ import annotations

from typing import Any

PRODUCER_LINGER_MS = 2
PRODUCER_DELIVERY_TIMEOUT_MS = 30_000
CONSUMER_SESSION_TIMEOUT_MS = 10_000


def producer_config(bootstrap_servers: str, client_id: str) -> dict[str, Any]:
    # Idempotence gives per-partition order and no duplicates from retries
    # inside the producer; the outbox covers crashes around it.
    return {
        "bootstrap.servers": bootstrap_servers,
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": PRODUCER_LINGER_MS,
        "delivery.timeout.ms": PRODUCER_DELIVERY_TIMEOUT_MS,
        "compression.type": "lz4",
    }


def consumer_config(bootstrap_servers: str, group_id: str, client_id: str) -> dict[str, Any]:
    # Offsets are committed by the loop after the database transaction, never
    # automatically before it: that order is what makes consumption lossless.
    return {
        "bootstrap.servers": bootstrap_servers,
        "group.id": group_id,
        "client.id": client_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": CONSUMER_SESSION_TIMEOUT_MS,
        "isolation.level": "read_committed",
    }
