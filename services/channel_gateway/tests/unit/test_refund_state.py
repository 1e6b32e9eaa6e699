"""A stored refund only moves forward, whatever order the channel's answers arrive in."""

from __future__ import annotations

from channel_gateway.domain.channel import RefundState, refund_state_after
from hypothesis import given
from hypothesis import strategies as st

FINAL = (RefundState.SUCCEEDED, RefundState.FAILED)


def test_forward_moves_are_taken() -> None:
    assert refund_state_after(None, RefundState.PROCESSING) is RefundState.PROCESSING
    assert refund_state_after(RefundState.PROCESSING, RefundState.SUCCEEDED) is RefundState.SUCCEEDED
    assert refund_state_after(None, RefundState.FAILED) is RefundState.FAILED


def test_late_or_empty_answers_change_nothing() -> None:
    assert refund_state_after(RefundState.SUCCEEDED, RefundState.PROCESSING) is None
    assert refund_state_after(RefundState.PROCESSING, RefundState.NOT_FOUND) is None
    assert refund_state_after(RefundState.SUCCEEDED, RefundState.SUCCEEDED) is None
    assert refund_state_after(RefundState.FAILED, RefundState.SUCCEEDED) is None


@given(st.lists(st.sampled_from(list(RefundState)), max_size=12))
def test_once_final_a_refund_stays_final(reports: list[RefundState]) -> None:
    state: RefundState | None = None
    first_final = next((r for r in reports if r in FINAL), None)
    for reported in reports:
        state = refund_state_after(state, reported) or state
        assert state is not RefundState.NOT_FOUND
    assert state is (first_final or (RefundState.PROCESSING if RefundState.PROCESSING in reports else None))
