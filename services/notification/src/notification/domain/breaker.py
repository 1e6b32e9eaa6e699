"""A per-endpoint circuit breaker: an endpoint that keeps failing is left alone for a while.

CLOSED: attempts go. After `failure_threshold` consecutive failures it is OPEN until
`open_until`: its deliveries wait (not attempted, no attempt counted). Past the
cool-down it is HALF_OPEN: one attempt at a time probes it; a success closes it,
a failure opens it again for another cool-down.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from paykit.errors import invariant

DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_COOL_DOWN_S = 60.0


class BreakerState(enum.StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclass(frozen=True)
class Breaker:
    consecutive_failures: int = 0
    open_until: datetime | None = None


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    cool_down_s: float = DEFAULT_COOL_DOWN_S

    def __post_init__(self) -> None:
        invariant(self.failure_threshold >= 1, "breaker threshold must be at least 1")
        invariant(self.cool_down_s > 0, "breaker cool-down must be positive")

    def state(self, breaker: Breaker, now: datetime) -> BreakerState:
        if breaker.consecutive_failures < self.failure_threshold:
            return BreakerState.CLOSED
        if breaker.open_until is not None and now < breaker.open_until:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def in_flight_limit(self, breaker: Breaker, now: datetime, concurrency: int) -> int:
        """How many attempts may be in flight to the endpoint now."""
        match self.state(breaker, now):
            case BreakerState.CLOSED:
                return concurrency
            case BreakerState.HALF_OPEN:
                return 1
            case BreakerState.OPEN:
                return 0

    def on_success(self, breaker: Breaker) -> Breaker:
        return Breaker()

    def on_failure(self, breaker: Breaker, now: datetime) -> Breaker:
        failures = breaker.consecutive_failures + 1
        if failures < self.failure_threshold:
            return Breaker(failures, None)
        return Breaker(failures, now + timedelta(seconds=self.cool_down_s))
