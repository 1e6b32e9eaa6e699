"""The expiry scheduler's tick against real PostgreSQL, with payment-core's answers chosen by the test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from order_service.adapters.payment_client import ClosureOutcome
from order_service.domain.order import Order, OrderStatus
from order_service.service_layer.expiry import EXPIRED_REASON, ExpiryPolicy, close_expired_orders
from order_service.service_layer.services import UowFactory, now_utc
from paykit.contracts.convert import from_timestamp
from paykit.errors import Unavailable
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.events.v1.order_events_pb2 import OrderClosed
from paykit.messaging.envelope import unpack

POLICY = ExpiryPolicy(retry_schedule_s=(5.0, 15.0, 60.0, 300.0), force_after_attempts=3)

pytestmark = pytest.mark.usefixtures("clean_tables")


def tick(uow_factory: UowFactory, payment_core: Any, clock: Callable[[], datetime] = now_utc) -> int:
    return asyncio.run(close_expired_orders(uow_factory, payment_core, POLICY, clock))


def expired(**changes: Any) -> dict[str, Any]:
    return {"expires_at": now_utc() - timedelta(seconds=1), **changes}


def paying(**changes: Any) -> dict[str, Any]:
    return expired(status=OrderStatus.PAYING, pay_attempts=1, pay_method="qr", payment_id="pay_1", **changes)


def test_expired_created_order_closes_at_once_with_an_order_closed_event(
    uow_factory: UowFactory,
    payment_core: Any,
    make_order: Callable[..., Order],
    get_order: Callable[[str], Order],
    published: Callable[[str], list[Envelope]],
) -> None:
    order = make_order(**expired())
    assert tick(uow_factory, payment_core) == 1
    closed = get_order(order.order_id)
    assert (closed.status, closed.close_reason) == (OrderStatus.CLOSED, EXPIRED_REASON)
    assert payment_core.calls == []  # never sent to payment-core: nothing to close there
    event = published(order.order_id)[-1]
    assert event.event_type == "order.closed"
    payload = unpack(event, OrderClosed)
    assert (payload.order_id, payload.reason) == (order.order_id, EXPIRED_REASON)
    assert from_timestamp(payload.closed_at) == closed.closed_at


def test_paying_order_closes_once_payment_core_closed_its_payments(
    uow_factory: UowFactory,
    payment_core: Any,
    make_order: Callable[..., Order],
    get_order: Callable[[str], Order],
    published: Callable[[str], list[Envelope]],
) -> None:
    order = make_order(**paying())
    tick(uow_factory, payment_core)
    assert payment_core.calls_for("close_payment") == [(order.order_id, EXPIRED_REASON, False)]
    assert get_order(order.order_id).status is OrderStatus.CLOSED
    assert [e.event_type for e in published(order.order_id)] == ["order.closed"]


def test_created_order_after_a_failed_attempt_is_closed_at_payment_core_first(
    uow_factory: UowFactory,
    payment_core: Any,
    make_order: Callable[..., Order],
    get_order: Callable[[str], Order],
) -> None:
    order = make_order(**expired(pay_attempts=1))
    tick(uow_factory, payment_core)
    assert payment_core.calls_for("close_payment") == [(order.order_id, EXPIRED_REASON, False)]
    assert get_order(order.order_id).status is OrderStatus.CLOSED


def test_pending_close_stays_paying_and_is_retried_after_the_first_delay(
    uow_factory: UowFactory,
    payment_core: Any,
    make_order: Callable[..., Order],
    get_order: Callable[[str], Order],
    published: Callable[[str], list[Envelope]],
) -> None:
    order = make_order(**paying())
    payment_core.closure[order.order_id] = ClosureOutcome.PENDING
    before = now_utc()
    tick(uow_factory, payment_core)
    after = get_order(order.order_id)
    assert (after.status, after.close_attempts) == (OrderStatus.PAYING, 1)
    assert after.next_close_at is not None
    assert before + timedelta(seconds=5) <= after.next_close_at <= now_utc() + timedelta(seconds=5)
    assert published(order.order_id) == []
    # Persisted, so the next tick (in this process or after a restart) waits for it...
    assert tick(uow_factory, payment_core) == 0
    # ...and asks again once the delay has passed, backing off further.
    later = after.next_close_at + timedelta(milliseconds=1)
    tick(uow_factory, payment_core, clock=lambda: later)
    again = get_order(order.order_id)
    assert len(payment_core.calls_for("close_payment")) == 2
    assert again.close_attempts == 2
    assert again.next_close_at == later + timedelta(seconds=15)


def test_payment_core_outage_is_retried_like_a_pending_close(
    uow_factory: UowFactory,
    payment_core: Any,
    make_order: Callable[..., Order],
    get_order: Callable[[str], Order],
) -> None:
    order = make_order(**paying())
    payment_core.closure[order.order_id] = Unavailable("payment service did not answer")
    tick(uow_factory, payment_core)
    after = get_order(order.order_id)
    assert (after.status, after.close_attempts) == (OrderStatus.PAYING, 1)


def test_paid_outcome_leaves_the_order_paying_for_the_payment_event(
    uow_factory: UowFactory,
    payment_core: Any,
    make_order: Callable[..., Order],
    get_order: Callable[[str], Order],
    published: Callable[[str], list[Envelope]],
) -> None:
    order = make_order(**paying())
    payment_core.closure[order.order_id] = ClosureOutcome.PAID
    tick(uow_factory, payment_core)
    after = get_order(order.order_id)
    assert after.status is OrderStatus.PAYING
    assert after.next_close_at is not None and after.next_close_at > now_utc()
    assert published(order.order_id) == []


def test_close_is_forced_after_the_configured_number_of_unconfirmed_attempts(
    uow_factory: UowFactory, payment_core: Any, make_order: Callable[..., Order]
) -> None:
    patient = make_order(**paying(close_attempts=POLICY.force_after_attempts - 1))
    forced = make_order(**paying(close_attempts=POLICY.force_after_attempts))
    tick(uow_factory, payment_core)
    assert sorted(payment_core.calls_for("close_payment")) == sorted(
        [(patient.order_id, EXPIRED_REASON, False), (forced.order_id, EXPIRED_REASON, True)]
    )


def test_orders_not_expired_paid_or_closed_are_left_alone(
    uow_factory: UowFactory, payment_core: Any, make_order: Callable[..., Order]
) -> None:
    past = now_utc() - timedelta(minutes=1)
    make_order(status=OrderStatus.PAYING, pay_attempts=1)
    make_order(status=OrderStatus.PAID, expires_at=past, payment_id="pay_1", paid_at=past, pay_attempts=1)
    make_order(status=OrderStatus.CLOSED, expires_at=past, close_reason="cancelled", closed_at=past)
    assert tick(uow_factory, payment_core) == 0
    assert payment_core.calls == []


def test_two_concurrent_ticks_ask_payment_core_once_per_order(
    uow_factory: UowFactory,
    payment_core: Any,
    make_order: Callable[..., Order],
    get_order: Callable[[str], Order],
) -> None:
    orders = [make_order(**paying()) for _ in range(6)]

    async def both() -> list[int]:
        return list(
            await asyncio.gather(
                close_expired_orders(uow_factory, payment_core, POLICY),
                close_expired_orders(uow_factory, payment_core, POLICY),
            )
        )

    assert sum(asyncio.run(both())) == 6
    asked = [call[0] for call in payment_core.calls_for("close_payment")]
    assert sorted(asked) == sorted(o.order_id for o in orders)
    assert all(get_order(o.order_id).status is OrderStatus.CLOSED for o in orders)
