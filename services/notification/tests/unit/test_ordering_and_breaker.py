"""The ordering rule of one order's deliveries, and the per-endpoint circuit breaker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from notification.domain.breaker import Breaker, BreakerPolicy, BreakerState
from notification.domain.delivery import DeliveryStatus, may_attempt

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def test_a_delivery_waits_for_an_earlier_open_one() -> None:
    assert not may_attempt(2, [(1, DeliveryStatus.RETRYING)])
    assert not may_attempt(3, [(1, DeliveryStatus.DELIVERED), (2, DeliveryStatus.PENDING)])


def test_a_delivery_goes_once_earlier_ones_are_delivered_or_dead() -> None:
    assert may_attempt(3, [(1, DeliveryStatus.DELIVERED), (2, DeliveryStatus.DEAD)])
    assert may_attempt(1, [(2, DeliveryStatus.PENDING)])


@given(st.lists(st.tuples(st.integers(1, 20), st.sampled_from(list(DeliveryStatus))), max_size=10))
def test_the_first_open_delivery_of_an_order_may_always_go(rows: list[tuple[int, DeliveryStatus]]) -> None:
    open_ones = sorted(seq for seq, status in rows if status.open)
    if open_ones:
        assert may_attempt(open_ones[0], rows)
        assert all(not may_attempt(seq, rows) for seq in open_ones if seq > open_ones[0])


def test_breaker_opens_after_threshold_then_half_opens_then_closes() -> None:
    policy = BreakerPolicy(failure_threshold=3, cool_down_s=30)
    breaker = Breaker()
    for _ in range(2):
        breaker = policy.on_failure(breaker, NOW)
        assert policy.state(breaker, NOW) is BreakerState.CLOSED
    breaker = policy.on_failure(breaker, NOW)
    assert policy.state(breaker, NOW) is BreakerState.OPEN
    assert policy.in_flight_limit(breaker, NOW, 4) == 0
    later = NOW + timedelta(seconds=31)
    assert policy.state(breaker, later) is BreakerState.HALF_OPEN
    assert policy.in_flight_limit(breaker, later, 4) == 1
    assert policy.state(policy.on_success(breaker), later) is BreakerState.CLOSED


def test_a_failed_probe_opens_the_breaker_again() -> None:
    policy = BreakerPolicy(failure_threshold=1, cool_down_s=10)
    breaker = policy.on_failure(Breaker(), NOW)
    probe_at = NOW + timedelta(seconds=11)
    assert policy.state(breaker, probe_at) is BreakerState.HALF_OPEN
    again = policy.on_failure(breaker, probe_at)
    assert policy.state(again, probe_at) is BreakerState.OPEN
    assert again.open_until == probe_at + timedelta(seconds=10)


@given(st.lists(st.booleans(), max_size=30))
def test_breaker_is_open_only_after_threshold_consecutive_failures(outcomes: list[bool]) -> None:
    policy = BreakerPolicy(failure_threshold=4, cool_down_s=60)
    breaker = Breaker()
    streak = 0
    for ok in outcomes:
        breaker = policy.on_success(breaker) if ok else policy.on_failure(breaker, NOW)
        streak = 0 if ok else streak + 1
        assert (policy.state(breaker, NOW) is BreakerState.OPEN) == (streak >= 4)
