"""The order repository against real PostgreSQL, at the head of the migrations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from order_service.domain.order import Order, OrderStatus
from order_service.service_layer.services import UowFactory, now_utc
from paykit.errors import InvariantViolation
from paykit.money import Money
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError


def test_new_columns_round_trip(
    make_order: Callable[..., Order], uow_factory: UowFactory, get_order: Callable[[str], Order]
) -> None:
    order = make_order()
    at = now_utc().replace(microsecond=0)
    changed = replace(
        order,
        status=OrderStatus.PARTIALLY_REFUNDED,
        pay_attempts=2,
        payment_id="pay_2",
        paid_at=at,
        pay_method="card",
        refunded=Money(500, "CNY"),
        close_reason="not really closed, just a value",
        closed_at=at + timedelta(seconds=1),
        next_close_at=at + timedelta(seconds=2),
        close_attempts=3,
    )
    with uow_factory() as uow:
        uow.orders.save(changed)
        uow.orders.record_duplicate_payment(order.order_id, "pay_9")
        uow.orders.record_duplicate_payment(order.order_id, "pay_9")  # recorded once
        uow.commit()
    assert get_order(order.order_id) == replace(changed, duplicate_payment_ids=("pay_9",))


def test_a_new_order_has_nothing_refunded_and_no_close_history(
    make_order: Callable[..., Order], get_order: Callable[[str], Order]
) -> None:
    loaded = get_order(make_order().order_id)
    assert (loaded.refunded, loaded.close_attempts, loaded.next_close_at, loaded.duplicate_payment_ids) == (
        Money(0, "CNY"),
        0,
        None,
        (),
    )


def test_locked_read_carries_the_duplicate_payments(
    make_order: Callable[..., Order], uow_factory: UowFactory
) -> None:
    order = make_order()
    with uow_factory() as uow:
        uow.orders.record_duplicate_payment(order.order_id, "pay_a")
        uow.orders.record_duplicate_payment(order.order_id, "pay_b")
        uow.commit()
    with uow_factory() as uow:
        locked = uow.orders.get(order.order_id, for_update=True)
    assert locked is not None
    assert sorted(locked.duplicate_payment_ids) == ["pay_a", "pay_b"]


def test_a_refund_is_recorded_once_by_its_id(
    make_order: Callable[..., Order], uow_factory: UowFactory
) -> None:
    order = make_order()
    with uow_factory() as uow:
        first = uow.orders.record_refund(order.order_id, "rfd_1", "pay_1", Money(100, "CNY"), now_utc())
        second = uow.orders.record_refund(order.order_id, "rfd_1", "pay_1", Money(100, "CNY"), now_utc())
        uow.commit()
    assert (first, second) == (True, False)


def test_a_refund_id_already_counted_for_another_order_is_an_invariant_violation(
    make_order: Callable[..., Order], uow_factory: UowFactory
) -> None:
    first, second = make_order(), make_order()
    refund_id = f"rfd_shared_{first.order_id}"
    with uow_factory() as uow:
        assert uow.orders.record_refund(first.order_id, refund_id, "pay_1", Money(100, "CNY"), now_utc())
        with pytest.raises(InvariantViolation, match=first.order_id):
            uow.orders.record_refund(second.order_id, refund_id, "pay_1", Money(100, "CNY"), now_utc())


def test_database_refuses_a_refunded_amount_above_the_order_amount(
    make_order: Callable[..., Order], order_engine: Engine
) -> None:
    order = make_order()
    with pytest.raises(IntegrityError, match="orders_refunded_within_amount"), order_engine.begin() as conn:
        conn.execute(
            text("UPDATE orders SET refunded_minor = amount_minor + 1 WHERE order_id = :id"),
            {"id": order.order_id},
        )


def test_expiry_scan_takes_open_expired_orders_not_deferred_and_skips_locked_ones(
    clean_tables: None, make_order: Callable[..., Order], uow_factory: UowFactory
) -> None:
    now = now_utc()
    past = now - timedelta(minutes=1)
    due_created = make_order(expires_at=past - timedelta(seconds=2))
    due_paying = make_order(status=OrderStatus.PAYING, pay_attempts=1, expires_at=past - timedelta(seconds=1))
    due_again = make_order(expires_at=past, next_close_at=past, close_attempts=1)
    make_order()  # not expired
    make_order(expires_at=past, next_close_at=now + timedelta(seconds=30))  # deferred
    make_order(status=OrderStatus.CLOSED, expires_at=past, close_reason="x", closed_at=past)
    make_order(status=OrderStatus.PAID, expires_at=past, payment_id="pay_1", paid_at=past, pay_attempts=1)

    with uow_factory() as first:
        claimed = first.orders.lock_due_for_close(now, 2)
        # A second replica scanning meanwhile skips the rows the first one holds.
        with uow_factory() as second:
            rest = second.orders.lock_due_for_close(now, 100)
    assert [o.order_id for o in claimed] == [due_created.order_id, due_paying.order_id]
    assert [o.order_id for o in rest] == [due_again.order_id]
