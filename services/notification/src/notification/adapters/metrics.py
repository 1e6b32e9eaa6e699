"""notification's Prometheus metrics.

paykit_webhook_delivery_attempts_total{outcome}   counter: merchant webhook attempts
    recorded, by the state the delivery is in after the attempt: delivered,
    retrying (failed, another attempt is scheduled) or dead (failed, no more
    attempts). Counted after the transaction that recorded them commits.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter

from notification.domain.delivery import DeliveryStatus

OUTCOMES = (DeliveryStatus.DELIVERED, DeliveryStatus.RETRYING, DeliveryStatus.DEAD)

DELIVERY_ATTEMPTS = Counter(
    "paykit_webhook_delivery_attempts_total",
    "Merchant webhook delivery attempts recorded, by outcome.",
    ["outcome"],
)
for _outcome in OUTCOMES:  # every series exists from the start, at 0
    DELIVERY_ATTEMPTS.labels(_outcome.value.lower())


def count_attempts(statuses: Iterable[DeliveryStatus]) -> None:
    for status, count in Tally(statuses).items():
        if status in OUTCOMES:
            DELIVERY_ATTEMPTS.labels(status.value.lower()).inc(count)
