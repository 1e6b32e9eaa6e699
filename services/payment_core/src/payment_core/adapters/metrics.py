"""payment-core's Prometheus metrics.

paykit_payment_outcomes_total{channel, outcome}   counter: payments that reached
    SUCCEEDED, FAILED or UNKNOWN (outcome in lower case), counted once the
    transaction that moved them committed. A payment that went UNKNOWN and was
    then resolved counts under both.
paykit_payments_stuck{channel, state}              gauge: payments PROCESSING or
    UNKNOWN for longer than PAYMENT_STUCK_AFTER_S, from a periodic count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from paykit.db import on_commit
from prometheus_client import Counter, Gauge
from sqlalchemy.orm import Session

from payment_core.domain.payment import OPEN_STATES, Payment, PaymentStatus

OUTCOME_STATES = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.UNKNOWN})

PAYMENT_OUTCOMES = Counter(
    "paykit_payment_outcomes_total",
    "Payments that reached SUCCEEDED, FAILED or UNKNOWN, by channel and outcome.",
    ["channel", "outcome"],
)
PAYMENTS_STUCK = Gauge(
    "paykit_payments_stuck",
    "Payments PROCESSING or UNKNOWN for longer than the stuck threshold, by channel and state.",
    ["channel", "state"],
)


def count_outcome_on_commit(session: Session, payment: Payment) -> None:
    """Count `payment`'s new state once the transaction it was saved in commits."""
    if payment.status not in OUTCOME_STATES:
        return
    counter = PAYMENT_OUTCOMES.labels(payment.channel, payment.status.value.lower())
    on_commit(session, counter.inc)


def set_stuck(counts: Mapping[tuple[str, PaymentStatus], int], channels: Iterable[str]) -> None:
    """Every channel and open state gets a value, 0 included, so a cleared backlog reads 0."""
    keys = {(channel, state) for channel in channels for state in OPEN_STATES} | set(counts)
    for channel, state in sorted(keys, key=lambda k: (k[0], k[1].value)):
        PAYMENTS_STUCK.labels(channel, state.value.lower()).set(counts.get((channel, state), 0))
