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
    RefundCheck,
    RefundOutcome,
    apply_refund,
    attach_payment,
    check_refund,
    close,
    close_retry_delay_s,
    defer_close,
    mark_paid,
    needs_payment_close,
    payment_failed,
    postpone_close,
    start_paying,
)
from paykit.errors import FailedPrecondition, InvariantViolation
from paykit.money import Money

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=30)
AMOUNT = Money(1999, "CNY")
SCHEDULE_S = (5.0, 15.0, 60.0, 300.0)

# Every move any transition may make, from the module's documented lifecycle.
ALLOWED_MOVES: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.CREATED: frozenset(
        {OrderStatus.CREATED, OrderStatus.PAYING, OrderStatus.PAID, OrderStatus.CLOSED}
    ),
    OrderStatus.PAYING: frozenset(
        {OrderStatus.PAYING, OrderStatus.PAID, OrderStatus.CREATED, OrderStatus.CLOSED}
    ),
    OrderStatus.PAID: frozenset({OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED}),
    OrderStatus.PARTIALLY_REFUNDED: frozenset({OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED}),
    OrderStatus.REFUNDED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.CLOSED: frozenset({OrderStatus.CLOSED}),
}
PAID_LIKE = frozenset({OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED})
OPEN = frozenset({OrderStatus.CREATED, OrderStatus.PAYING})


def new_order(status: OrderStatus = OrderStatus.CREATED, **changes: object) -> Order:
    order = Order(
        order_id="ord_1",
        merchant_id="mch_1",
        merchant_order_no="M-1",
        amount=AMOUNT,
        subject="a book",
        status=status,
        created_at=T0,
        expires_at=T0 + TTL,
        refunded=Money.zero("CNY"),
    )
    return dataclasses.replace(order, **changes)  # type: ignore[arg-type]


def paid_order(payment_id: str = "pay_1", refunded_minor: int = 0) -> Order:
    paying = attach_payment(start_paying(new_order(), "qr", T0), payment_id, 1)
    paid, _ = mark_paid(paying, payment_id, T0 + timedelta(minutes=1))
    return dataclasses.replace(paid, refunded=Money(refunded_minor, "CNY"))


# --- paying -----------------------------------------------------------------------------


def test_happy_path_created_paying_attached_paid() -> None:
    order = start_paying(new_order(), "qr", T0)
    assert (order.status, order.pay_attempts, order.payment_id, order.pay_method) == (
        OrderStatus.PAYING,
        1,
        None,
        "qr",
    )
    order = attach_payment(order, "pay_1", 1)
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
        start_paying(order, "qr", order.expires_at)
    assert order == new_order()


@pytest.mark.parametrize("status", sorted(PAID_LIKE | {OrderStatus.CLOSED}, key=lambda s: s.value))
def test_start_paying_a_paid_or_closed_order_raises_failed_precondition(
    status: OrderStatus,
) -> None:
    order = new_order(status, payment_id="pay_1")
    with pytest.raises(FailedPrecondition):
        start_paying(order, "qr", T0)


def test_start_paying_again_with_the_same_method_continues_the_same_attempt() -> None:
    paying = attach_payment(start_paying(new_order(), "qr", T0), "pay_1", 1)
    again = start_paying(paying, "qr", T0 + timedelta(seconds=5))
    assert again == paying
    assert again.payment_idempotency_key == "ord_1/1"


def test_paying_order_stored_without_a_method_continues_its_attempt() -> None:
    legacy = new_order(OrderStatus.PAYING, pay_attempts=1, payment_id="pay_1")
    assert start_paying(legacy, "qr", T0) == legacy


def test_switching_method_while_paying_starts_a_new_attempt_with_a_new_key() -> None:
    first = attach_payment(start_paying(new_order(), "qr", T0), "pay_1", 1)
    switched = start_paying(first, "card", T0 + timedelta(minutes=1))
    assert (switched.status, switched.pay_attempts, switched.payment_id, switched.pay_method) == (
        OrderStatus.PAYING,
        2,
        None,
        "card",
    )
    assert switched.payment_idempotency_key != first.payment_idempotency_key


def test_switching_method_after_expiry_is_refused() -> None:
    paying = start_paying(new_order(), "qr", T0)
    with pytest.raises(FailedPrecondition, match="expired"):
        start_paying(paying, "card", paying.expires_at)


def test_late_answer_for_a_replaced_attempt_is_not_attached() -> None:
    switched = start_paying(start_paying(new_order(), "qr", T0), "card", T0)
    assert attach_payment(switched, "pay_old", 1) == switched
    assert attach_payment(switched, "pay_new", 2).payment_id == "pay_new"


def test_failed_attempt_reopens_the_order_and_the_next_attempt_gets_a_new_key() -> None:
    first = attach_payment(start_paying(new_order(), "qr", T0), "pay_1", 1)
    reopened = payment_failed(first, "pay_1")
    assert (reopened.status, reopened.payment_id) == (OrderStatus.CREATED, None)
    second = start_paying(reopened, "qr", T0 + timedelta(minutes=1))
    assert second.pay_attempts == 2
    assert second.payment_idempotency_key != first.payment_idempotency_key


def test_failure_of_another_payment_does_not_reopen_a_paying_order() -> None:
    paying = attach_payment(start_paying(new_order(), "qr", T0), "pay_2", 1)
    assert payment_failed(paying, "pay_1") == paying


def test_attach_payment_does_not_replace_an_attached_payment() -> None:
    paying = attach_payment(start_paying(new_order(), "qr", T0), "pay_1", 1)
    assert attach_payment(paying, "pay_2", 1) == paying


# --- paid and duplicates ----------------------------------------------------------------


def test_success_reported_twice_is_already_paid_the_second_time() -> None:
    paid, _ = mark_paid(start_paying(new_order(), "qr", T0), "pay_1", T0)
    again, outcome = mark_paid(paid, "pay_1", T0 + timedelta(minutes=5))
    assert outcome is PaidOutcome.ALREADY_PAID
    assert again == paid


def test_second_payment_succeeding_on_a_paid_order_is_recorded_as_duplicate() -> None:
    paid, _ = mark_paid(start_paying(new_order(), "qr", T0), "pay_1", T0)
    again, outcome = mark_paid(paid, "pay_2", T0)
    assert outcome is PaidOutcome.DUPLICATE_PAYMENT
    assert again == dataclasses.replace(paid, duplicate_payment_ids=("pay_2",))


def test_success_on_a_closed_order_is_a_duplicate_and_leaves_it_closed() -> None:
    closed = new_order(OrderStatus.CLOSED)
    after, outcome = mark_paid(closed, "pay_1", T0)
    assert outcome is PaidOutcome.DUPLICATE_PAYMENT
    assert after.status is OrderStatus.CLOSED
    assert after.duplicate_payment_ids == ("pay_1",)


def test_success_flagged_as_duplicate_never_marks_a_paying_order_paid() -> None:
    paying = attach_payment(start_paying(new_order(), "qr", T0), "pay_1", 1)
    after, outcome = mark_paid(paying, "pay_1", T0, duplicate_reason="order closed")
    assert outcome is PaidOutcome.DUPLICATE_PAYMENT
    assert (after.status, after.paid_at, after.duplicate_payment_ids) == (
        OrderStatus.PAYING,
        None,
        ("pay_1",),
    )


def test_a_payment_once_judged_duplicate_never_pays_the_order_later() -> None:
    paying = start_paying(new_order(), "qr", T0)
    flagged, _ = mark_paid(paying, "pay_1", T0, duplicate_reason="order closed")
    again, outcome = mark_paid(flagged, "pay_1", T0)
    assert outcome is PaidOutcome.DUPLICATE_PAYMENT
    assert again == flagged


def test_duplicate_recorded_twice_is_listed_once() -> None:
    paid = paid_order()
    once, _ = mark_paid(paid, "pay_2", T0)
    twice, _ = mark_paid(once, "pay_2", T0)
    assert twice.duplicate_payment_ids == ("pay_2",)


def test_orders_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        new_order().status = OrderStatus.PAID  # type: ignore[misc]


def test_an_order_refunded_in_another_currency_cannot_exist() -> None:
    with pytest.raises(InvariantViolation):
        new_order(refunded=Money(0, "USD"))


# --- closing ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [OrderStatus.CREATED, OrderStatus.PAYING])
def test_close_an_unpaid_order_records_reason_and_time(status: OrderStatus) -> None:
    closed = close(new_order(status), "expired", T0 + TTL)
    assert (closed.status, closed.close_reason, closed.closed_at) == (OrderStatus.CLOSED, "expired", T0 + TTL)


def test_closing_a_closed_order_changes_nothing_and_keeps_the_first_reason() -> None:
    closed = close(new_order(), "cancelled", T0)
    assert close(closed, "expired", T0 + TTL) == closed


@pytest.mark.parametrize("status", sorted(PAID_LIKE, key=lambda s: s.value))
def test_closing_a_paid_order_is_refused_and_suggests_a_refund(status: OrderStatus) -> None:
    refunded_minor = {OrderStatus.PAID: 0, OrderStatus.PARTIALLY_REFUNDED: 1, OrderStatus.REFUNDED: 1999}
    order = new_order(status, payment_id="pay_1", refunded=Money(refunded_minor[status], "CNY"))
    with pytest.raises(FailedPrecondition, match="is paid; refund it instead"):
        close(order, "cancelled", T0)


def test_only_an_order_never_sent_to_payment_core_closes_without_it() -> None:
    assert not needs_payment_close(new_order())
    assert needs_payment_close(start_paying(new_order(), "qr", T0))
    reopened = payment_failed(start_paying(new_order(), "qr", T0), "pay_1")
    assert needs_payment_close(reopened)
    assert not needs_payment_close(new_order(OrderStatus.CLOSED))


def test_postponed_close_follows_the_schedule_and_repeats_its_last_delay() -> None:
    order = new_order(OrderStatus.PAYING, pay_attempts=1)
    delays = []
    for _ in range(6):
        order = postpone_close(order, T0, SCHEDULE_S)
        assert order.next_close_at is not None
        delays.append((order.next_close_at - T0).total_seconds())
    assert delays == [5.0, 15.0, 60.0, 300.0, 300.0, 300.0]
    assert order.close_attempts == 6


def test_postponing_or_deferring_a_closed_or_paid_order_changes_nothing() -> None:
    for order in (new_order(OrderStatus.CLOSED), paid_order()):
        assert postpone_close(order, T0, SCHEDULE_S) == order
        assert defer_close(order, T0) == order


def test_an_empty_close_schedule_is_an_invariant_violation() -> None:
    with pytest.raises(InvariantViolation):
        close_retry_delay_s(0, ())


# --- refunds ----------------------------------------------------------------------------


def test_partial_then_full_refund() -> None:
    partial, outcome = apply_refund(paid_order(), "pay_1", Money(500, "CNY"))
    assert outcome is RefundOutcome.APPLIED
    assert (partial.status, partial.refunded) == (OrderStatus.PARTIALLY_REFUNDED, Money(500, "CNY"))
    full, _ = apply_refund(partial, "pay_1", Money(1499, "CNY"))
    assert (full.status, full.refunded) == (OrderStatus.REFUNDED, AMOUNT)


def test_refund_of_another_payment_does_not_touch_the_order() -> None:
    paid = paid_order()
    after, outcome = apply_refund(paid, "pay_2", Money(1999, "CNY"))
    assert outcome is RefundOutcome.NOT_THE_ORDERS_PAYMENT
    assert after == paid


def test_refund_on_a_closed_order_is_of_a_duplicate_and_does_not_touch_it() -> None:
    closed, _ = mark_paid(new_order(OrderStatus.CLOSED, payment_id="pay_1"), "pay_1", T0)
    after, outcome = apply_refund(closed, "pay_1", AMOUNT)
    assert outcome is RefundOutcome.NOT_THE_ORDERS_PAYMENT
    assert after == closed


def test_refunds_totalling_more_than_the_amount_are_an_invariant_violation() -> None:
    partial = paid_order(refunded_minor=1500)
    with pytest.raises(InvariantViolation):
        apply_refund(partial, "pay_1", Money(500, "CNY"))


def test_refund_check_refuses_an_unpaid_order() -> None:
    with pytest.raises(FailedPrecondition, match="ord_1 is CREATED; only a paid order can be refunded"):
        check_refund(new_order(), Money(1, "CNY"))


def test_refund_check_refuses_more_than_the_order_amount_and_names_the_refundable() -> None:
    with pytest.raises(FailedPrecondition, match=r"refundable: 14\.99 CNY"):
        check_refund(paid_order(refunded_minor=500), Money(2000, "CNY"))


def test_refund_check_tells_within_from_above_the_refundable() -> None:
    partial = paid_order(refunded_minor=500)
    assert check_refund(partial, Money(1499, "CNY")) is RefundCheck.WITHIN_REFUNDABLE
    assert check_refund(partial, Money(1500, "CNY")) is RefundCheck.ABOVE_REFUNDABLE


# --- properties -------------------------------------------------------------------------

payment_ids = st.sampled_from(["pay_1", "pay_2", "pay_3"])
methods = st.sampled_from(["qr", "card"])
minutes = st.integers(min_value=-60, max_value=60)
events = st.one_of(
    st.tuples(st.just("start_paying"), st.tuples(methods, minutes)),
    # 0: the current attempt's answer; 1: a late answer for the attempt before.
    st.tuples(st.just("attach_payment"), st.tuples(payment_ids, st.integers(0, 1))),
    st.tuples(st.just("mark_paid"), st.tuples(payment_ids, st.booleans())),
    st.tuples(st.just("payment_failed"), payment_ids),
    st.tuples(st.just("close"), minutes),
    st.tuples(st.just("refund"), st.tuples(payment_ids, st.integers(min_value=1, max_value=2500))),
    st.tuples(st.just("postpone_close"), minutes),
)
Event = tuple[str, object]


def initial_orders() -> st.SearchStrategy[Order]:
    def build(status: OrderStatus, payment_id: str | None, refunded_minor: int) -> Order:
        if status in PAID_LIKE:
            refunded = {
                OrderStatus.PAID: 0,
                OrderStatus.PARTIALLY_REFUNDED: refunded_minor,
                OrderStatus.REFUNDED: AMOUNT.minor,
            }[status]
            return new_order(
                status,
                payment_id=payment_id or "pay_1",
                paid_at=T0,
                pay_attempts=1,
                pay_method="qr",
                refunded=Money(refunded, "CNY"),
            )
        if status is OrderStatus.CLOSED:
            return new_order(status, close_reason="expired", closed_at=T0 + TTL)
        if status is OrderStatus.PAYING:
            return new_order(status, pay_attempts=1, pay_method="qr")
        return new_order(status)

    return st.builds(
        build,
        st.sampled_from(list(OrderStatus)),
        st.none() | payment_ids,
        st.integers(min_value=1, max_value=AMOUNT.minor - 1),
    )


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def apply(order: Order, ev: Event) -> tuple[Order, PaidOutcome | RefundOutcome | None]:
    name, arg = ev
    match name, arg:
        case "start_paying", (str(method), int(minute)):
            return start_paying(order, method, at(minute)), None
        case "attach_payment", (str(payment_id), int(back)):
            return attach_payment(order, payment_id, order.pay_attempts - back), None
        case "mark_paid", (str(payment_id), bool(duplicate)):
            return mark_paid(order, payment_id, at(1), "order closed" if duplicate else "")
        case "payment_failed", str(payment_id):
            return payment_failed(order, payment_id), None
        case "close", int(minute):
            return close(order, "expired", at(minute)), None
        case "refund", (str(payment_id), int(minor)):
            return apply_refund(order, payment_id, Money(minor, "CNY"))
        case "postpone_close", int(minute):
            return postpone_close(order, at(minute), SCHEDULE_S), None
    raise AssertionError(f"unknown event {ev}")


def expected_error(order: Order, ev: Event) -> type[Exception] | None:
    """The specification of which events are refused, written independently of the code."""
    name, arg = ev
    if name == "start_paying":
        assert isinstance(arg, tuple)
        method, minute = arg
        expired = at(minute) >= order.expires_at
        if order.status is OrderStatus.CREATED:
            return FailedPrecondition if expired else None
        if order.status is OrderStatus.PAYING:
            switching = order.pay_method not in (None, method)
            return FailedPrecondition if switching and expired else None
        return FailedPrecondition
    if name == "close":
        return FailedPrecondition if order.status in PAID_LIKE else None
    if name == "refund":
        assert isinstance(arg, tuple)
        payment_id, minor = arg
        own = order.status in PAID_LIKE and payment_id == order.payment_id
        return InvariantViolation if own and order.refunded.minor + minor > order.amount.minor else None
    return None


def check_step(before: Order, ev: Event, order: Order, outcome: PaidOutcome | RefundOutcome | None) -> None:
    name = ev[0]
    assert order.status in ALLOWED_MOVES[before.status], (before.status, ev, order.status)
    assert (order.order_id, order.merchant_id, order.amount, order.expires_at) == (
        before.order_id,
        before.merchant_id,
        before.amount,
        before.expires_at,
    )
    # A paid order is never closed, a closed order is never paid.
    if before.status in PAID_LIKE:
        assert order.status in PAID_LIKE
    if before.status is OrderStatus.CLOSED:
        assert order.status is OrderStatus.CLOSED
    # Refunds: never above the amount, only by a refund of the order's own payment.
    assert 0 <= order.refunded.minor <= order.amount.minor
    if name != "refund" or outcome is not RefundOutcome.APPLIED:
        assert order.refunded == before.refunded
    else:
        assert order.refunded > before.refunded
        assert ev[1][0] == before.payment_id  # type: ignore[index]
    check_invariants(order)
    # Pay attempts grow by one per new attempt, and only then.
    new_attempt = name == "start_paying" and (
        before.status is OrderStatus.CREATED
        or (before.status is OrderStatus.PAYING and before.pay_method not in (None, ev[1][0]))  # type: ignore[index]
    )
    assert order.pay_attempts == before.pay_attempts + (1 if new_attempt else 0)
    assert order.close_attempts >= before.close_attempts
    if name == "mark_paid":
        check_mark_paid(before, ev, order, outcome)


def check_invariants(order: Order) -> None:
    """What holds of every order, whatever happened to it."""
    match order.status:
        case OrderStatus.PAID:
            assert order.refunded.is_zero
        case OrderStatus.PARTIALLY_REFUNDED:
            assert 0 < order.refunded.minor < order.amount.minor
        case OrderStatus.REFUNDED:
            assert order.refunded == order.amount
        case _:
            assert order.refunded.is_zero
    if order.status in PAID_LIKE:
        assert order.payment_id is not None and order.paid_at is not None
        assert order.payment_id not in order.duplicate_payment_ids
    if order.status is OrderStatus.CLOSED:
        assert order.close_reason and order.closed_at is not None
    if order.status is OrderStatus.CREATED:
        assert order.payment_id is None
    assert len(set(order.duplicate_payment_ids)) == len(order.duplicate_payment_ids)


def check_mark_paid(
    before: Order, ev: Event, order: Order, outcome: PaidOutcome | RefundOutcome | None
) -> None:
    payment_id, duplicate = ev[1]  # type: ignore[misc]
    if before.status in PAID_LIKE and before.payment_id == payment_id:
        expected = PaidOutcome.ALREADY_PAID
    elif duplicate or payment_id in before.duplicate_payment_ids or before.status not in OPEN:
        expected = PaidOutcome.DUPLICATE_PAYMENT
    else:
        expected = PaidOutcome.MARKED_PAID
    assert outcome is expected, (before, ev, outcome)
    if outcome is PaidOutcome.MARKED_PAID:
        assert (order.status, order.payment_id) == (OrderStatus.PAID, payment_id)
    elif outcome is PaidOutcome.DUPLICATE_PAYMENT:
        # Recorded, and nothing else about the order moved.
        assert payment_id in order.duplicate_payment_ids
        assert dataclasses.replace(order, duplicate_payment_ids=before.duplicate_payment_ids) == before
    else:
        assert order == before


@settings(max_examples=400, deadline=None)
@given(initial_orders(), st.lists(events, max_size=30))
def test_random_event_sequences_stay_inside_the_allowed_graph(order: Order, sequence: list[Event]) -> None:
    check_invariants(order)
    ever_closed = order.status is OrderStatus.CLOSED
    ever_paid = order.status in PAID_LIKE
    for ev in sequence:
        before = order
        snapshot = dataclasses.replace(before)
        refused = expected_error(before, ev)
        if refused is not None:
            with pytest.raises(refused):
                apply(before, ev)
            assert before == snapshot  # a refused event changes nothing
            continue
        order, outcome = apply(before, ev)
        check_step(before, ev, order, outcome)
        assert before == snapshot  # transitions return new orders, never mutate
        ever_closed = ever_closed or order.status is OrderStatus.CLOSED
        ever_paid = ever_paid or order.status in PAID_LIKE
        assert not (ever_closed and ever_paid), "an order was both closed and paid"


@settings(max_examples=200, deadline=None)
@given(initial_orders(), st.lists(events, max_size=20), payment_ids)
def test_marking_paid_twice_with_the_same_payment_changes_nothing_the_second_time(
    order: Order, sequence: list[Event], payment_id: str
) -> None:
    for ev in sequence:
        if expected_error(order, ev) is None:
            order, _ = apply(order, ev)
    once, first = mark_paid(order, payment_id, T0 + timedelta(minutes=2))
    twice, second = mark_paid(once, payment_id, T0 + timedelta(minutes=3))
    assert twice == once
    if first is PaidOutcome.MARKED_PAID:
        assert second is PaidOutcome.ALREADY_PAID
    else:
        assert second is first


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=AMOUNT.minor), max_size=12))
def test_refunds_never_exceed_the_amount_and_the_status_follows_the_total(amounts: list[int]) -> None:
    order = paid_order()
    for minor in amounts:
        if order.refunded.minor + minor > AMOUNT.minor:
            with pytest.raises(InvariantViolation):
                apply_refund(order, "pay_1", Money(minor, "CNY"))
            continue
        order, outcome = apply_refund(order, "pay_1", Money(minor, "CNY"))
        assert outcome is RefundOutcome.APPLIED
        check_invariants(order)
    assert order.refunded.minor == sum_within(amounts, AMOUNT.minor)


def sum_within(amounts: list[int], limit: int) -> int:
    """The total a sequence of refunds reaches when each one that would pass `limit` is refused."""
    total = 0
    for minor in amounts:
        if total + minor <= limit:
            total += minor
    return total
