"""The persisted retry schedule: jitter stays in bounds, and the delivery dies after the last step."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from notification.domain.delivery import (
    DEFAULT_RETRY_SCHEDULE_S,
    AttemptResult,
    Delivery,
    DeliveryStatus,
    RetrySchedule,
    after_attempt,
    redelivered,
)
from paykit.errors import FailedPrecondition

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def delivery(**fields: object) -> Delivery:
    base = Delivery(
        delivery_id="dlv_1",
        endpoint_id="ntf_1",
        merchant_id="m1",
        event_id="evt_1",
        event_type="order.paid",
        order_id="ord_1",
        payload=b"{}",
        status=DeliveryStatus.PENDING,
        attempts_made=0,
        round_attempts=0,
        next_attempt_at=NOW,
        sequence=1,
        created_at=NOW,
        delivered_at=None,
    )
    return base.__class__(**{**base.__dict__, **fields})  # type: ignore[arg-type]


def failed(status: int = 500) -> AttemptResult:
    return AttemptResult(NOW, status, 12, "", "boom")


def test_default_schedule_covers_about_a_day() -> None:
    total_h = sum(DEFAULT_RETRY_SCHEDULE_S) / 3600
    assert 20 <= total_h <= 26
    assert RetrySchedule().max_attempts == 9


@given(step=st.integers(1, len(DEFAULT_RETRY_SCHEDULE_S)), seed=st.integers(0, 2**32))
def test_jitter_stays_within_ten_percent(step: int, seed: int) -> None:
    delay = RetrySchedule().delay_after(step, random.Random(seed))
    base = DEFAULT_RETRY_SCHEDULE_S[step - 1]
    assert delay is not None
    assert base * 0.9 <= delay <= base * 1.1


def test_every_failure_but_the_last_schedules_a_retry_then_dead() -> None:
    schedule = RetrySchedule((1.0, 2.0, 3.0), jitter_ratio=0.0)
    rng = random.Random(1)
    current = delivery()
    for expected_delay in (1.0, 2.0, 3.0):
        current = after_attempt(current, failed(), schedule, rng)
        assert current.status is DeliveryStatus.RETRYING
        assert current.next_attempt_at == NOW + timedelta(seconds=expected_delay)
    current = after_attempt(current, failed(), schedule, rng)
    assert current.status is DeliveryStatus.DEAD
    assert current.attempts_made == 4
    assert current.next_attempt_at is None
    assert current.last_error == "HTTP 500"


def test_a_2xx_delivers() -> None:
    done = after_attempt(delivery(), AttemptResult(NOW, 204, 5, "", ""), RetrySchedule(), random.Random())
    assert done.status is DeliveryStatus.DELIVERED
    assert done.delivered_at == NOW


@pytest.mark.parametrize("status", [DeliveryStatus.DELIVERED, DeliveryStatus.DEAD])
def test_a_settled_delivery_takes_no_more_attempts(status: DeliveryStatus) -> None:
    with pytest.raises(FailedPrecondition):
        after_attempt(delivery(status=status), failed(), RetrySchedule(), random.Random())


def test_redelivery_restarts_the_schedule_and_keeps_the_attempt_count() -> None:
    dead = delivery(status=DeliveryStatus.DEAD, attempts_made=9, round_attempts=9, next_attempt_at=None)
    again = redelivered(dead, NOW)
    assert (again.status, again.round_attempts, again.attempts_made) == (DeliveryStatus.PENDING, 0, 9)
    for status in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING, DeliveryStatus.DELIVERED):
        with pytest.raises(FailedPrecondition):
            redelivered(delivery(status=status), NOW)
