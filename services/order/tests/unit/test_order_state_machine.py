"""The order state machine: examples for each transition, and property tests over
random sequences of events checking it never leaves the allowed graph."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from order_service.domain.order import (
    Order,
    OrderStatus,
    PaidOutcome,
    attach_payment,
    mark_paid,
    payment_failed,
    start_paying,
)
from paykit.errors import FailedPrecondition
from paykit.money import Money

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=30)

# The moves start_paying / attach_payment / mark_paid / payment_failed may make,
# written out from the module's documented lifecycle (refunds and closing are
# other functions, so from those states these events change nothing).
ALLOWED_MOVES: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.CREATED: frozenset({OrderStatus.CREATED, OrderStatus.PAYING, OrderStatus.PAID}),
    OrderStatus.PAYING: frozenset({OrderStatus.PAYING, OrderStatus.PAID, OrderStatus.CREATED}),
    OrderStatus.PAID: frozenset({OrderStatus.PAID}),
    OrderStatus.PARTIALLY_REFUNDED: frozenset({OrderStatus.PARTIALLY_REFUNDED}),
    OrderStatus.REFUNDED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.CLOSED: frozenset({OrderStatus.CLOSED}),
}
PAID_LIKE = frozenset({OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED})


def new_order(status: OrderStatus = OrderStatus.CREATED, **changes: object) -> Order:
    order = Order(
        order_id="ord_1",
        merchant_id="mch_1",
        merchant_order_no="M-1",
        amount=Money(1999, "CNY"),
        subject="a book",
        status=status,
        created_at=T0,
        expires_at=T0 + TTL,
    )
    return dataclasses.replace(order, **changes)  # type: ignore[arg-type]


# --- examples -------------------------------------------------------------------------


def test_happy_path_created_paying_attached_paid() -> None:
    order = start_paying(new_order(), T0)
    assert (order.status, order.pay_attempts, order.payment_id) == (OrderStatus.PAYING, 1, None)
    order = attach_payment(order, "pay_1")
    assert order.payment_id == "pay_1"
    paid, outcome = mark_paid(order, "pay_1", T0 + timedelta(minutes=1))
    assert outcome is PaidOutcome.MARKED_PAID
    assert (paid.status, paid.payment_id, paid.paid_at) == (
        OrderStatus.PAID,
        "pay_1",
        T0 + timedelta(minutes=1),
    )


def test_start_paying_an_expired_order_raises_failed_precondition() -> None:
    order = new_order()
    with pytest.raises(FailedPrecondition, match="expired"):
        start_paying(order, order.expires_at)
    assert order == new_order()


@pytest.mark.parametrize("status", sorted(PAID_LIKE | {OrderStatus.CLOSED}, key=lambda s: s.value))
def test_start_paying_a_paid_or_closed_order_raises_failed_precondition(
    status: OrderStatus,
) -> None:
    order = new_order(status, payment_id="pay_1")
    with pytest.raises(FailedPrecondition):
        start_paying(order, T0)


def test_start_paying_again_while_paying_continues_the_same_attempt() -> None:
    paying = attach_payment(start_paying(new_order(), T0), "pay_1")
    again = start_paying(paying, T0 + timedelta(seconds=5))
    assert again == paying
    assert again.payment_idempotency_key == "ord_1/1"


def test_failed_attempt_reopens_the_order_and_the_next_attempt_gets_a_new_key() -> None:
    first = attach_payment(start_paying(new_order(), T0), "pay_1")
    reopened = payment_failed(first, "pay_1")
    assert (reopened.status, reopened.payment_id) == (OrderStatus.CREATED, None)
    second = start_paying(reopened, T0 + timedelta(minutes=1))
    assert second.pay_attempts == 2
    assert second.payment_idempotency_key != first.payment_idempotency_key


def test_failure_of_another_payment_does_not_reopen_a_paying_order() -> None:
    paying = attach_payment(start_paying(new_order(), T0), "pay_2")
    assert payment_failed(paying, "pay_1") == paying


def test_attach_payment_does_not_replace_an_attached_payment() -> None:
    paying = attach_payment(start_paying(new_order(), T0), "pay_1")
    assert attach_payment(paying, "pay_2") == paying


def test_success_reported_twice_is_already_paid_the_second_time() -> None:
    paid, _ = mark_paid(start_paying(new_order(), T0), "pay_1", T0)
    again, outcome = mark_paid(paid, "pay_1", T0 + timedelta(minutes=5))
    assert outcome is PaidOutcome.ALREADY_PAID
    assert again == paid


def test_second_payment_succeeding_on_a_paid_order_is_a_duplicate_and_changes_nothing() -> None:
    paid, _ = mark_paid(start_paying(new_order(), T0), "pay_1", T0)
    again, outcome = mark_paid(paid, "pay_2", T0)
    assert outcome is PaidOutcome.DUPLICATE_PAYMENT
    assert again == paid


def test_success_on_a_closed_order_is_a_duplicate_and_leaves_it_closed() -> None:
    closed = new_order(OrderStatus.CLOSED)
    after, outcome = mark_paid(closed, "pay_1", T0)
    assert outcome is PaidOutcome.DUPLICATE_PAYMENT
    assert after == closed


def test_orders_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        new_order().status = OrderStatus.PAID  # type: ignore[misc]


# --- properties -----------------------------------------------------------------------

payment_ids = st.sampled_from(["pay_1", "pay_2", "pay_3"])
events = st.one_of(
    st.tuples(st.just("start_paying"), st.integers(min_value=-60, max_value=60)),
    st.tuples(st.just("attach_payment"), payment_ids),
    st.tuples(st.just("mark_paid"), payment_ids),
    st.tuples(st.just("payment_failed"), payment_ids),
)


def initial_orders() -> st.SearchStrategy[Order]:
    def build(status: OrderStatus, payment_id: str | None) -> Order:
        if status in PAID_LIKE:
            return new_order(status, payment_id=payment_id or "pay_1", paid_at=T0, pay_attempts=1)
        return new_order(status)

    return st.builds(build, st.sampled_from(list(OrderStatus)), st.none() | payment_ids)


def apply(order: Order, ev: tuple[str, object]) -> tuple[Order, PaidOutcome | None]:
    name, arg = ev
    if name == "start_paying":
        assert isinstance(arg, int)
        # Minutes after creation; expires after TTL (30 min).
        return start_paying(order, T0 + timedelta(minutes=arg)), None
    assert isinstance(arg, str)
    if name == "attach_payment":
        return attach_payment(order, arg), None
    if name == "mark_paid":
        return mark_paid(order, arg, T0 + timedelta(minutes=1))
    return payment_failed(order, arg), None


def may_raise(order: Order, ev: tuple[str, object]) -> bool:
    """Only start_paying refuses, and only on an expired, paid or closed order."""
    name, arg = ev
    if name != "start_paying":
        return False
    if order.status is OrderStatus.CREATED:
        assert isinstance(arg, int)
        return T0 + timedelta(minutes=arg) >= order.expires_at
    return order.status is not OrderStatus.PAYING


@settings(max_examples=300, deadline=None)
@given(initial_orders(), st.lists(events, max_size=30))
def test_random_event_sequences_stay_inside_the_allowed_graph(
    order: Order, sequence: list[tuple[str, object]]
) -> None:
    for ev in sequence:
        before = order
        snapshot = dataclasses.replace(before)
        if may_raise(before, ev):
            with pytest.raises(FailedPrecondition):
                apply(before, ev)
            assert before == snapshot  # a refused event changes nothing
            continue
        order, outcome = apply(before, ev)

        assert order.status in ALLOWED_MOVES[before.status], (before.status, ev, order.status)
        # Identity never changes.
        assert (order.order_id, order.merchant_id, order.amount) == (
            before.order_id,
            before.merchant_id,
            before.amount,
        )
        assert order.pay_attempts >= before.pay_attempts
        if before.status is OrderStatus.CREATED and order.status is OrderStatus.PAYING:
            assert order.pay_attempts == before.pay_attempts + 1
        else:
            assert order.pay_attempts == before.pay_attempts
        if order.status is OrderStatus.CREATED:
            assert order.payment_id is None
        if order.status in PAID_LIKE:
            assert order.payment_id is not None and order.paid_at is not None
        if before.status in PAID_LIKE | {OrderStatus.CLOSED}:
            # Once paid or closed, nothing these events say moves the order.
            assert order == before
        if ev[0] == "mark_paid":
            expected = (
                PaidOutcome.MARKED_PAID
                if before.status in (OrderStatus.CREATED, OrderStatus.PAYING)
                else PaidOutcome.ALREADY_PAID
                if before.status in PAID_LIKE and before.payment_id == ev[1]
                else PaidOutcome.DUPLICATE_PAYMENT
            )
            assert outcome is expected
            if outcome is PaidOutcome.MARKED_PAID:
                assert order.payment_id == ev[1]
        assert before == snapshot  # transitions return new orders, never mutate


@settings(max_examples=200, deadline=None)
@given(initial_orders(), st.lists(events, max_size=20), payment_ids)
def test_marking_paid_twice_with_the_same_payment_changes_nothing_the_second_time(
    order: Order, sequence: list[tuple[str, object]], payment_id: str
) -> None:
    for ev in sequence:
        if not may_raise(order, ev):
            order, _ = apply(order, ev)
    once, first = mark_paid(order, payment_id, T0 + timedelta(minutes=2))
    twice, second = mark_paid(once, payment_id, T0 + timedelta(minutes=3))
    assert twice == once
    if first is PaidOutcome.MARKED_PAID:
        assert second is PaidOutcome.ALREADY_PAID
    else:
        assert second is first
