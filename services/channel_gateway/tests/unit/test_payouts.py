"""Payouts in the domain and on the sandbox's wire: the channel's first answer stands, money
leaves minor units only in the request body, and an answer about another payout is no answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channel_gateway.adapters.connectors.simulator import transformers
from channel_gateway.domain.channel import (
    ChannelConflict,
    PayoutCommand,
    PayoutReply,
    PayoutState,
    payout_state_after,
)
from hypothesis import given
from hypothesis import strategies as st
from paykit.money import Money

COMMAND = PayoutCommand("stl_1", "mch_1", Money(123_456, "CNY"))


def _answer(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "result": "PAID",
        "payout_no": "SIMP1",
        "out_payout_no": "stl_1",
        "merchant_ref": "mch_1",
        "amount": "1234.56",
        "currency": "CNY",
        "paid_at": "2026-11-25T10:00:00+00:00",
    }
    data.update(changes)
    return data


@given(st.lists(st.sampled_from(list(PayoutState)), min_size=1, max_size=8))
def test_the_first_answer_stands(reports: list[PayoutState]) -> None:
    state: PayoutState | None = None
    for reported in reports:
        state = payout_state_after(state, reported) or state
    assert state is reports[0]


def test_payout_body_carries_the_settlement_as_out_payout_no_and_a_decimal_amount() -> None:
    body = json.loads(transformers.payout_body(PayoutCommand("stl_9", "mch_2", Money(500, "JPY"))))
    assert body == {"out_payout_no": "stl_9", "merchant_ref": "mch_2", "amount": "500", "currency": "JPY"}


def test_paid_and_declined_answers_map_to_payout_states() -> None:
    assert transformers.payout_reply(_answer(), COMMAND) == PayoutReply(PayoutState.PAID, "SIMP1")
    declined = _answer(result="FAILED", code="PAYOUT_DECLINED", message="no", paid_at=None)
    assert transformers.payout_reply(declined, COMMAND) == PayoutReply(
        PayoutState.FAILED, "SIMP1", "PAYOUT_DECLINED", "no"
    )
    refused = {"result": "INVALID", "code": "INVALID_REQUEST", "message": "amount: bad"}
    assert transformers.payout_reply(refused, COMMAND) == PayoutReply(
        PayoutState.FAILED, failure_code="INVALID_REQUEST", failure_message="amount: bad"
    )


def test_a_number_the_channel_used_for_another_payout_is_a_conflict_never_a_failure() -> None:
    # Money may have moved under that number: answering FAILED would let it be paid again.
    taken = {"result": "INVALID", "code": "OUT_PAYOUT_NO_USED", "message": "used"}
    with pytest.raises(ChannelConflict, match="stl_1"):
        transformers.payout_reply(taken, COMMAND)


@pytest.mark.parametrize(
    "changes",
    [
        {"out_payout_no": "stl_2"},
        {"amount": "1234.55"},
        {"currency": "USD"},
        {"amount": "1234.567"},
        {"payout_no": ""},
        {"result": "PENDING"},
        {"result": "NOT_FOUND"},
    ],
)
def test_answers_about_another_payout_or_malformed_are_unreadable(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        transformers.payout_reply(_answer(**changes), COMMAND)
