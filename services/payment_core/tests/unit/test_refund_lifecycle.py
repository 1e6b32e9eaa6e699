"""Refunds against a payment, as a model-based property test: random sequences of
notifications, queries, timeouts, refund requests and refund answers (late,
repeated, out of order) never reach an illegal state and never refund more than
was captured; plus examples of each refund transition."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from paykit.errors import FailedPrecondition, InvalidArgument
from paykit.money import Money
from payment_core.domain import payment as pm
from payment_core.domain import refund as rm
from payment_core.domain.payment import ALLOWED, ChannelResult, Payment, PaymentStatus
from payment_core.domain.refund import Refund, RefundAnswer, RefundResult, RefundStatus

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CAPTURED = Money(10_000, "CNY")


def processing_payment() -> Payment:
    payment = Payment(
        payment_id="pay_1",
        idempotency_key="ord_1/1",
        order_id="ord_1",
        merchant_id="mch_1",
        amount=CAPTURED,
        method="qr",
        channel="simulator",
        subject="a book",
        status=PaymentStatus.INIT,
        created_at=T0,
    )
    return pm.start_processing(payment, T0)[0]


def new_refund(refund_id: str, amount: Money) -> Refund:
    return Refund(
        refund_id=refund_id,
        idempotency_key=f"k-{refund_id}",
        payment_id="pay_1",
        order_id="ord_1",
        merchant_id="mch_1",
        amount=amount,
        reason="customer asked",
        channel="simulator",
        status=RefundStatus.PENDING,
        created_at=T0,
    )


# -- examples ---------------------------------------------------------------------


def test_refund_goes_pending_processing_succeeded() -> None:
    refund = new_refund("rfd_1", Money(500, "CNY"))
    accepted, changes, outcome = rm.apply_refund_result(
        refund, RefundResult(RefundAnswer.PROCESSING, "R1"), T0
    )
    assert (accepted.status, outcome, [c.to_status for c in changes]) == (
        RefundStatus.PROCESSING,
        rm.RefundOutcome.ACCEPTED,
        [RefundStatus.PROCESSING],
    )
    done, changes, outcome = rm.apply_refund_result(
        accepted, RefundResult(RefundAnswer.SUCCEEDED, "R1", Money(500, "CNY")), T0
    )
    assert done.status is RefundStatus.SUCCEEDED and outcome is rm.RefundOutcome.SUCCEEDED
    assert done.channel_refund_no == "R1" and done.succeeded_at == T0


def test_success_overtaking_the_answer_is_recorded_through_processing() -> None:
    refund = new_refund("rfd_1", Money(500, "CNY"))
    done, changes, outcome = rm.apply_refund_result(refund, RefundResult(RefundAnswer.SUCCEEDED), T0)
    assert [(c.from_status, c.to_status) for c in changes] == [
        (RefundStatus.PENDING, RefundStatus.PROCESSING),
        (RefundStatus.PROCESSING, RefundStatus.SUCCEEDED),
    ]
    # The late PROCESSING answer changes nothing.
    again, changes, outcome = rm.apply_refund_result(done, RefundResult(RefundAnswer.PROCESSING), T0)
    assert again == done and changes == [] and outcome is rm.RefundOutcome.NO_CHANGE


def test_a_refund_amount_the_channel_did_not_ask_for_is_flagged_not_applied() -> None:
    refund = new_refund("rfd_1", Money(500, "CNY"))
    same, changes, outcome = rm.apply_refund_result(
        refund, RefundResult(RefundAnswer.SUCCEEDED, amount=Money(501, "CNY")), T0
    )
    assert same == refund and changes == [] and outcome is rm.RefundOutcome.FLAGGED_AMOUNT_MISMATCH


def test_succeeded_and_failed_refunds_are_final() -> None:
    refund = new_refund("rfd_1", Money(500, "CNY"))
    with pytest.raises(FailedPrecondition):
        rm.transition(refund, RefundStatus.SUCCEEDED, "skipping PROCESSING", T0)
    failed, _, _ = rm.apply_refund_result(refund, RefundResult(RefundAnswer.FAILED, failure_code="X"), T0)
    assert failed.status is RefundStatus.FAILED
    for answer in RefundAnswer:
        assert rm.apply_refund_result(failed, RefundResult(answer), T0)[2] is rm.RefundOutcome.NO_CHANGE


def test_reserve_refuses_more_than_is_refundable_and_other_currencies() -> None:
    payment = pm.apply_channel_result(processing_payment(), ChannelResult(True, CAPTURED, "T1", T0), T0)[0]
    reserved = pm.reserve_refund(payment, Money(9_000, "CNY"))
    with pytest.raises(FailedPrecondition, match="exceeds what is refundable"):
        pm.reserve_refund(reserved, Money(1_001, "CNY"))
    with pytest.raises(InvalidArgument) as info:
        pm.reserve_refund(reserved, Money(1, "USD"))
    assert info.value.field == "amount.currency"
    assert pm.reserve_refund(reserved, Money(1_000, "CNY")).refundable == Money(0, "CNY")


def test_refund_of_an_unpaid_payment_is_refused() -> None:
    with pytest.raises(FailedPrecondition, match="only a succeeded payment"):
        pm.reserve_refund(processing_payment(), Money(1, "CNY"))


# -- the property ---------------------------------------------------------------------

amounts = st.integers(min_value=-5, max_value=12_000)
answers = st.sampled_from(list(RefundAnswer))


class RefundMachine(RuleBasedStateMachine):
    """The payment and its refunds as the service layer drives them, without I/O."""

    def __init__(self) -> None:
        super().__init__()
        self.payment = processing_payment()
        self.refunds: dict[str, Refund] = {}
        self.history: list[tuple[PaymentStatus, PaymentStatus]] = []
        self.seq = 0
        self.now = T0

    def _apply_payment_change(self, change: pm.StateChange | None) -> None:
        if change is not None:
            self.history.append((change.from_status, change.to_status))

    @rule(
        succeeded=st.booleans(), amount=st.sampled_from([CAPTURED, Money(9_999, "CNY"), Money(10_000, "USD")])
    )
    def channel_speaks_about_payment(self, succeeded: bool, amount: Money) -> None:
        result = ChannelResult(succeeded, amount, "T1", self.now)
        self.payment, change, _ = pm.apply_channel_result(self.payment, result, self.now)
        self._apply_payment_change(change)

    @rule()
    def channel_times_out(self) -> None:
        with contextlib.suppress(FailedPrecondition):
            self.payment, change = pm.mark_unknown(self.payment, "timeout", self.now)
            self._apply_payment_change(change)

    @rule(minor=amounts)
    def merchant_asks_refund(self, minor: int) -> None:
        try:
            reserved = pm.reserve_refund(self.payment, Money(minor, "CNY"))
        except (FailedPrecondition, InvalidArgument):
            return
        self.seq += 1
        refund_id = f"rfd_{self.seq}"
        self.refunds[refund_id] = new_refund(refund_id, Money(minor, "CNY"))
        self.payment = reserved

    @precondition(lambda self: bool(self.refunds))
    @rule(data=st.data(), answer=answers, wrong_amount=st.booleans())
    def channel_speaks_about_refund(
        self, data: st.DataObject, answer: RefundAnswer, wrong_amount: bool
    ) -> None:
        refund_id = data.draw(st.sampled_from(sorted(self.refunds)))
        refund = self.refunds[refund_id]
        amount = Money(refund.amount.minor + 1, "CNY") if wrong_amount else refund.amount
        updated, changes, outcome = rm.apply_refund_result(
            refund, RefundResult(answer, "R", amount), self.now
        )
        for change in changes:
            assert change.to_status in rm.ALLOWED[change.from_status]
        if outcome is rm.RefundOutcome.SUCCEEDED:
            self.payment, change = pm.record_refund(self.payment, refund.amount, refund_id, self.now)
            self._apply_payment_change(change)
        elif outcome is rm.RefundOutcome.FAILED:
            self.payment = pm.release_refund(self.payment, refund.amount)
        self.refunds[refund_id] = updated
        self.now += timedelta(seconds=1)

    @invariant()
    def never_more_refunded_than_captured(self) -> None:
        p = self.payment
        assert 0 <= p.refunded_minor <= p.refund_reserved_minor <= p.amount.minor
        succeeded = sum(r.amount.minor for r in self.refunds.values() if r.status is RefundStatus.SUCCEEDED)
        open_ = sum(r.amount.minor for r in self.refunds.values() if r.status in rm.OPEN_STATES)
        assert p.refunded_minor == succeeded
        assert p.refund_reserved_minor == succeeded + open_

    @invariant()
    def states_follow_the_graph(self) -> None:
        for before, after in self.history:
            assert after in ALLOWED[before]
        if self.refunds:
            assert self.payment.status in pm.CAPTURED_STATES
        refunded_all = self.payment.refunded_minor == self.payment.amount.minor
        assert (self.payment.status is PaymentStatus.REFUNDED) == refunded_all


TestRefundMachine = RefundMachine.TestCase
TestRefundMachine.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
