"""The delivery-attempt counter: one increment per recorded attempt, under the state it left."""

from __future__ import annotations

from notification.adapters.metrics import count_attempts
from notification.domain.delivery import DeliveryStatus
from prometheus_client import REGISTRY


def attempts(outcome: str) -> float | None:
    return REGISTRY.get_sample_value("paykit_webhook_delivery_attempts_total", {"outcome": outcome})


def test_every_outcome_exists_at_start_and_each_attempt_counts_once() -> None:
    before = {o: attempts(o) for o in ("delivered", "retrying", "dead")}
    assert all(v is not None for v in before.values()), "series declared at 0 before any attempt"

    count_attempts(
        [DeliveryStatus.DELIVERED, DeliveryStatus.RETRYING, DeliveryStatus.DELIVERED, DeliveryStatus.DEAD]
    )

    moved = {o: (attempts(o) or 0.0) - (before[o] or 0.0) for o in before}
    assert moved == {"delivered": 2, "retrying": 1, "dead": 1}
    assert attempts("pending") is None, "an attempt never leaves a delivery PENDING"
