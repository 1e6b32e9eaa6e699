"""The payment state machine: examples for each transition, and property tests over
random sequences of events checking it never leaves the allowed graph and never
turns a wrong amount or a failed payment into a success."""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paykit.errors import FailedPrecondition
from paykit.money import Money
from payment_core.domain.payment import (
    ALLOWED,
    OPEN_STATES,
    ChannelResult,
    Payment,
    PaymentStatus,
    ResultOutcome,
    StateChange,
    apply_channel_result,
    fail,
    mark_unknown,
    record_channel_acceptance,
    start_processing,
    transition,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
AMOUNT = Money(1999, "CNY")

S = PaymentStatus
# The lifecycle as documented in the module, written out independently of ALLOWED:
# INIT -> PROCESSING -> SUCCEEDED | FAILED | UNKNOWN; UNKNOWN -> SUCCEEDED | FAILED;
# SUCCEEDED -> PARTIALLY_REFUNDED | REFUNDED; partial refunds may repeat.
SPEC_GRAPH: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    S.INIT: frozenset({S.PROCESSING}),
    S.PROCESSING: frozenset({S.SUCCEEDED, S.FAILED, S.UNKNOWN}),
    S.UNKNOWN: frozenset({S.SUCCEEDED, S.FAILED}),
    S.SUCCEEDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.FAILED: frozenset(),
    S.REFUNDED: frozenset(),
}


def new_payment(status: PaymentStatus = S.INIT, **changes: object) -> Payment:
    payment = Payment(
        payment_id="pay_1",
        idempotency_key="ord_1/1",
        order_id="ord_1",
        merchant_id="mch_1",
        amount=AMOUNT,
        method="qr",
        channel="sim",
        subject="a book",
        status=status,
        created_at=T0,
    )
    return dataclasses.replace(payment, **changes)  # type: ignore[arg-type]


def result(succeeded: bool, amount: Money = AMOUNT, trade_no: str = "ch_1") -> ChannelResult:
    return ChannelResult(
        succeeded=succeeded,
        amount=amount,
        channel_trade_no=trade_no,
        occurred_at=T0 + timedelta(seconds=30),
        failure_code="" if succeeded else "DECLINED",
    )


# --- examples -------------------------------------------------------------------------


def test_allowed_table_matches_the_documented_lifecycle() -> None:
    assert ALLOWED == SPEC_GRAPH


def test_success_path_records_each_state_change() -> None:
    processing, c1 = start_processing(new_payment(), T0)
    assert c1 == StateChange("pay_1", S.INIT, S.PROCESSING, c1.reason, T0)
    accepted = record_channel_acceptance(processing, "ch_1", "https://pay/1")
    assert (accepted.status, accepted.channel_trade_no, accepted.pay_url) == (
        S.PROCESSING,
        "ch_1",
        "https://pay/1",
    )
    succeeded, c2, outcome = apply_channel_result(accepted, result(True), T0 + timedelta(minutes=1))
    assert outcome is ResultOutcome.SUCCEEDED
    assert c2 is not None and (c2.from_status, c2.to_status) == (S.PROCESSING, S.SUCCEEDED)
    assert succeeded.status is S.SUCCEEDED
    assert succeeded.succeeded_at == T0 + timedelta(seconds=30)


def test_unknown_payment_is_resolved_by_a_later_channel_result() -> None:
    processing, _ = start_processing(new_payment(), T0)
    unknown, change = mark_unknown(processing, "channel timed out", T0)
    assert (unknown.status, change.to_status) == (S.UNKNOWN, S.UNKNOWN)
    failed, change2, outcome = apply_channel_result(unknown, result(False), T0)
    assert outcome is ResultOutcome.FAILED
    assert (failed.status, failed.failure_code) == (S.FAILED, "DECLINED")
    assert change2 is not None and change2.from_status is S.UNKNOWN


def test_fail_records_the_failure_code() -> None:
    processing, _ = start_processing(new_payment(), T0)
    failed, change = fail(processing, "INSUFFICIENT_FUNDS", "declined", T0)
    assert (failed.status, failed.failure_code) == (S.FAILED, "INSUFFICIENT_FUNDS")
    assert (change.from_status, change.to_status) == (S.PROCESSING, S.FAILED)


@pytest.mark.parametrize(
    "wrong",
    [Money(1998, "CNY"), Money(2000, "CNY"), Money(1999, "USD"), Money(19, "JPY"), Money(0, "CNY")],
    ids=str,
)
@pytest.mark.parametrize("status", [S.PROCESSING, S.UNKNOWN])
def test_a_success_for_a_different_amount_or_currency_is_flagged_never_succeeded(
    status: PaymentStatus, wrong: Money
) -> None:
    payment = new_payment(status)
    after, change, outcome = apply_channel_result(payment, result(True, amount=wrong), T0)
    assert outcome is ResultOutcome.FLAGGED_AMOUNT_MISMATCH
    assert (after, change) == (payment, None)


def test_the_same_success_applied_twice_is_no_change_the_second_time() -> None:
    processing, _ = start_processing(new_payment(), T0)
    once, _, first = apply_channel_result(processing, result(True), T0)
    twice, change, second = apply_channel_result(once, result(True), T0 + timedelta(hours=1))
    assert (first, second) == (ResultOutcome.SUCCEEDED, ResultOutcome.NO_CHANGE)
    assert (twice, change) == (once, None)


def test_a_success_after_failure_is_flagged_and_the_payment_stays_failed() -> None:
    processing, _ = start_processing(new_payment(), T0)
    failed, _ = fail(processing, "DECLINED", "declined", T0)
    after, change, outcome = apply_channel_result(failed, result(True), T0)
    assert outcome is ResultOutcome.FLAGGED_SUCCESS_AFTER_FAILURE
    assert (after, change) == (failed, None)


@pytest.mark.parametrize(
    ("status", "to"),
    [
        (S.INIT, S.SUCCEEDED),
        (S.INIT, S.FAILED),
        (S.FAILED, S.SUCCEEDED),
        (S.FAILED, S.PROCESSING),
        (S.SUCCEEDED, S.FAILED),
        (S.UNKNOWN, S.PROCESSING),
        (S.REFUNDED, S.SUCCEEDED),
        (S.PROCESSING, S.PROCESSING),
    ],
)
def test_an_illegal_transition_raises_failed_precondition(status: PaymentStatus, to: PaymentStatus) -> None:
    payment = new_payment(status)
    with pytest.raises(FailedPrecondition, match=f"from {status.value} to {to.value}"):
        transition(payment, to, "test", T0)
    assert payment.status is status


@pytest.mark.parametrize("status", [S.INIT, S.SUCCEEDED, S.FAILED, S.UNKNOWN, S.REFUNDED])
def test_mark_unknown_outside_processing_raises_failed_precondition(status: PaymentStatus) -> None:
    with pytest.raises(FailedPrecondition):
        mark_unknown(new_payment(status), "timeout", T0)


# --- properties -----------------------------------------------------------------------

amounts = st.sampled_from(
    [
        AMOUNT,
        AMOUNT,
        Money(1998, "CNY"),
        Money(1999, "USD"),
        Money(1999, "JPY"),
        Money(-1999, "CNY"),
    ]
)
events = st.one_of(
    st.tuples(st.just("transition"), st.sampled_from(list(PaymentStatus))),
    st.tuples(st.just("start_processing"), st.none()),
    st.tuples(st.just("mark_unknown"), st.none()),
    st.tuples(st.just("fail"), st.sampled_from(["DECLINED", "RISK"])),
    st.tuples(
        st.just("channel_result"),
        st.builds(result, st.booleans(), amounts, st.sampled_from(["", "ch_1", "ch_2"])),
    ),
)

# Where each event tries to take the payment (channel results are idempotent, never raise).
TARGETS = {"start_processing": S.PROCESSING, "mark_unknown": S.UNKNOWN, "fail": S.FAILED}


def apply(
    payment: Payment, name: str, arg: object
) -> tuple[Payment, StateChange | None, ResultOutcome | None]:
    if name == "transition":
        assert isinstance(arg, PaymentStatus)
        return (*transition(payment, arg, "random", T0), None)
    if name == "start_processing":
        return (*start_processing(payment, T0), None)
    if name == "mark_unknown":
        return (*mark_unknown(payment, "random", T0), None)
    if name == "fail":
        assert isinstance(arg, str)
        return (*fail(payment, arg, "random", T0), None)
    assert isinstance(arg, ChannelResult)
    return apply_channel_result(payment, arg, T0)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(list(PaymentStatus)), st.lists(events, max_size=30))
def test_random_event_sequences_never_leave_the_allowed_graph(
    start: PaymentStatus, sequence: list[tuple[str, object]]
) -> None:
    payment = new_payment(start)
    ever_failed = start is S.FAILED
    for name, arg in sequence:
        before = payment
        snapshot = dataclasses.replace(before)
        target = arg if name == "transition" else TARGETS.get(name)
        if target is not None and target not in SPEC_GRAPH[before.status]:
            with pytest.raises(FailedPrecondition):
                apply(before, name, arg)
            assert before == snapshot  # refused: nothing returned, nothing changed
            continue
        payment, change, outcome = apply(before, name, arg)

        assert payment.status is before.status or payment.status in SPEC_GRAPH[before.status]
        if change is not None:
            assert (change.payment_id, change.from_status, change.to_status) == (
                before.payment_id,
                before.status,
                payment.status,
            )
        assert (payment.payment_id, payment.order_id, payment.amount) == (
            before.payment_id,
            before.order_id,
            before.amount,
        )
        if name == "fail":
            assert payment.failure_code == arg
        ever_failed = ever_failed or payment.status is S.FAILED
        if ever_failed:
            assert payment.status is S.FAILED  # FAILED is terminal; never SUCCEEDED
        if isinstance(arg, ChannelResult):
            assert outcome is not None
            check_channel_result(before, arg, payment, change, outcome)
        assert before == snapshot  # transitions return new payments, never mutate


def check_channel_result(
    before: Payment,
    res: ChannelResult,
    after: Payment,
    change: StateChange | None,
    outcome: ResultOutcome,
) -> None:
    if res.amount != before.amount:
        assert outcome is ResultOutcome.FLAGGED_AMOUNT_MISMATCH
    elif before.status in OPEN_STATES:
        assert outcome is (ResultOutcome.SUCCEEDED if res.succeeded else ResultOutcome.FAILED)
    elif res.succeeded and before.status is S.FAILED:
        assert outcome is ResultOutcome.FLAGGED_SUCCESS_AFTER_FAILURE
    else:
        assert outcome is ResultOutcome.NO_CHANGE
    if outcome is ResultOutcome.SUCCEEDED:
        assert after.status is S.SUCCEEDED
        assert after.amount == res.amount
        assert after.succeeded_at == res.occurred_at
        assert after.channel_trade_no == (res.channel_trade_no or before.channel_trade_no)
    if outcome is ResultOutcome.FAILED:
        assert after.status is S.FAILED
        assert after.failure_code == (res.failure_code or "CHANNEL_FAILED")
    if outcome in (ResultOutcome.SUCCEEDED, ResultOutcome.FAILED):
        assert change is not None
    else:
        assert (after, change) == (before, None)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(PaymentStatus)), st.booleans(), amounts)
def test_a_mismatched_amount_or_currency_is_never_succeeded(
    status: PaymentStatus, succeeded: bool, amount: Money
) -> None:
    payment = new_payment(status)
    after, change, outcome = apply_channel_result(payment, result(succeeded, amount=amount), T0)
    if amount != AMOUNT:
        assert outcome is ResultOutcome.FLAGGED_AMOUNT_MISMATCH
        assert (after, change) == (payment, None)
    if outcome is ResultOutcome.SUCCEEDED:
        assert amount == AMOUNT


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(PaymentStatus)), st.lists(events, max_size=15), st.booleans())
def test_applying_the_same_channel_result_twice_changes_nothing_the_second_time(
    start: PaymentStatus, prefix: list[tuple[str, object]], succeeded: bool
) -> None:
    payment = new_payment(start)
    for name, arg in prefix:
        with contextlib.suppress(FailedPrecondition):
            payment, _, _ = apply(payment, name, arg)
    res = result(succeeded)
    once, _, _ = apply_channel_result(payment, res, T0)
    twice, change, outcome = apply_channel_result(once, res, T0 + timedelta(minutes=5))
    assert twice == once
    assert change is None
    if once.status is S.SUCCEEDED and succeeded:
        assert outcome is ResultOutcome.NO_CHANGE
    assert outcome is not ResultOutcome.SUCCEEDED


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=30))
def test_a_failed_payment_never_becomes_succeeded(sequence: list[tuple[str, object]]) -> None:
    processing, _ = start_processing(new_payment(), T0)
    payment, _ = fail(processing, "DECLINED", "declined", T0)
    for name, arg in [*sequence, ("channel_result", result(True))]:
        try:
            payment, _, outcome = apply(payment, name, arg)
        except FailedPrecondition:
            continue
        assert payment.status is S.FAILED
        if isinstance(arg, ChannelResult) and arg.succeeded and arg.amount == AMOUNT:
            assert outcome is ResultOutcome.FLAGGED_SUCCESS_AFTER_FAILURE
