"""A delivery of one event to one endpoint: its states, its retry schedule, its ordering rule.

PENDING -> DELIVERED | RETRYING -> ... -> DEAD; DEAD -> PENDING only by Redeliver.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import assert_never

from paykit.errors import FailedPrecondition, invariant

# About 24 h in all: a merchant down for a day still gets every event.
DEFAULT_RETRY_SCHEDULE_S = (15.0, 60.0, 300.0, 900.0, 3600.0, 10800.0, 21600.0, 43200.0)
# +-10 %: endpoints that failed together do not all come back at the same second.
DEFAULT_JITTER_RATIO = 0.1
MAX_SCHEDULE_STEPS = 50
ERROR_MAX_CHARS = 500


class DeliveryStatus(enum.StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    RETRYING = "RETRYING"
    DEAD = "DEAD"

    @property
    def open(self) -> bool:
        """Still to be attempted: blocks the later deliveries of its order."""
        match self:
            case DeliveryStatus.PENDING | DeliveryStatus.RETRYING:
                return True
            case DeliveryStatus.DELIVERED | DeliveryStatus.DEAD:
                return False
            case _:
                assert_never(self)


@dataclass(frozen=True)
class RetrySchedule:
    """Delays after the 1st, 2nd, ... failed attempt; past the last one the delivery is DEAD."""

    delays_s: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE_S
    jitter_ratio: float = DEFAULT_JITTER_RATIO

    def __post_init__(self) -> None:
        invariant(1 <= len(self.delays_s) <= MAX_SCHEDULE_STEPS, "retry schedule needs 1..50 delays")
        invariant(all(d > 0 for d in self.delays_s), "retry delays must be positive")
        invariant(0 <= self.jitter_ratio < 1, "jitter ratio must be in [0, 1)")

    @property
    def max_attempts(self) -> int:
        return len(self.delays_s) + 1

    def delay_after(self, failed_attempts: int, rng: random.Random) -> float | None:
        """Seconds until the next attempt after `failed_attempts` failures, or None: give up."""
        invariant(failed_attempts >= 1, "a delay is asked for after a failed attempt")
        if failed_attempts > len(self.delays_s):
            return None
        base = self.delays_s[failed_attempts - 1]
        return base * (1 + rng.uniform(-self.jitter_ratio, self.jitter_ratio))


@dataclass(frozen=True)
class AttemptResult:
    """What one POST got: a status code (0 when none came back), or the error instead."""

    at: datetime
    status_code: int
    latency_ms: int
    error: str
    response: str

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    endpoint_id: str
    merchant_id: str
    event_id: str
    event_type: str
    order_id: str
    payload: bytes
    status: DeliveryStatus
    attempts_made: int
    round_attempts: int
    next_attempt_at: datetime | None
    sequence: int
    created_at: datetime
    delivered_at: datetime | None
    last_error: str = ""
    # The W3C carrier of the consumer span of the event that caused it (None for a delivery
    # made before deliveries kept one): every POST of it is a span in that trace.
    trace_context: Mapping[str, str] | None = field(default=None, compare=False)


def after_attempt(
    delivery: Delivery, result: AttemptResult, schedule: RetrySchedule, rng: random.Random
) -> Delivery:
    """The delivery once `result` is recorded: DELIVERED, RETRYING at the next time, or DEAD."""
    if not delivery.status.open:
        raise FailedPrecondition(f"delivery {delivery.delivery_id} is {delivery.status}, not in flight")
    attempted = replace(
        delivery, attempts_made=delivery.attempts_made + 1, round_attempts=delivery.round_attempts + 1
    )
    if result.succeeded:
        return replace(
            attempted,
            status=DeliveryStatus.DELIVERED,
            next_attempt_at=None,
            delivered_at=result.at,
            last_error="",
        )
    error = describe_failure(result)
    delay_s = schedule.delay_after(attempted.round_attempts, rng)
    if delay_s is None:
        return replace(attempted, status=DeliveryStatus.DEAD, next_attempt_at=None, last_error=error)
    return replace(
        attempted,
        status=DeliveryStatus.RETRYING,
        next_attempt_at=result.at + timedelta(seconds=delay_s),
        last_error=error,
    )


def describe_failure(result: AttemptResult) -> str:
    text = result.error or f"HTTP {result.status_code}"
    return text[:ERROR_MAX_CHARS]


def redelivered(delivery: Delivery, now: datetime) -> Delivery:
    """A DEAD delivery starts a new round of the schedule; anything else is refused."""
    if delivery.status is not DeliveryStatus.DEAD:
        raise FailedPrecondition(
            f"delivery {delivery.delivery_id} is {delivery.status}; only a DEAD delivery can be redelivered"
        )
    return replace(delivery, status=DeliveryStatus.PENDING, round_attempts=0, next_attempt_at=now)


def may_attempt(sequence: int, earlier: Iterable[tuple[int, DeliveryStatus]]) -> bool:
    """The ordering rule: a delivery of an order goes only when every earlier delivery of the
    same order to the same endpoint is DELIVERED or DEAD. `earlier` holds (sequence, status)
    of that order's deliveries to that endpoint. The claim query (adapters/repository.py)
    applies the same rule in SQL."""
    return not any(seq < sequence and status.open for seq, status in earlier)
