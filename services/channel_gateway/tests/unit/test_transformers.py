"""The sandbox's wire format read strictly: amounts convert exactly or the message is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channel_gateway.adapters.connectors.simulator import transformers
from channel_gateway.domain.channel import (
    ChargeState,
    CloseResult,
    NotificationRejected,
    PaymentNotification,
    RefundNotification,
    RefundState,
)
from paykit.money import Money


def _refund(**changes: Any) -> bytes:
    body = {
        "type": "REFUND",
        "notify_id": "NSIMR1",
        "out_trade_no": "pay_1",
        "out_refund_no": "rfd_1",
        "refund_no": "SIMR1",
        "status": "SUCCESS",
        "amount": "12.30",
        "currency": "CNY",
        "refunded_at": "2026-11-25T10:00:00+00:00",
    }
    body.update(changes)
    return json.dumps(body).encode()


def test_refund_notification_is_read_into_a_refund_notification() -> None:
    note = transformers.notification(_refund())
    assert isinstance(note, RefundNotification) and note.kind == "refund"
    assert (note.refund_id, note.payment_id, note.channel_refund_no) == ("rfd_1", "pay_1", "SIMR1")
    assert note.succeeded and note.amount == Money(1230, "CNY")
    assert not transformers.notification(_refund(status="FAILED")).succeeded


def test_notification_without_type_is_a_payment_notification() -> None:
    body = {
        "notify_id": "N1",
        "trade_no": "SIM1",
        "out_trade_no": "pay_1",
        "status": "SUCCESS",
        "amount": "19.99",
        "currency": "CNY",
        "paid_at": None,
    }
    note = transformers.notification(json.dumps(body).encode())
    assert isinstance(note, PaymentNotification) and note.kind == "payment"
    assert note.amount == Money(1999, "CNY")
    typed = transformers.notification(json.dumps({**body, "type": "PAYMENT"}).encode())
    assert typed == PaymentNotification(**{**note.__dict__, "occurred_at": typed.occurred_at})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_refund(amount="12.301"), "amount in wrong format"),
        (_refund(amount=12.3), "amount in wrong format"),
        (_refund(amount="0.00"), "amount in wrong format"),
        (_refund(currency="cny"), "amount in wrong format"),
        (_refund(status="PROCESSING"), "unknown refund status"),
        (_refund(type="CHARGEBACK"), "unknown notification type"),
        (_refund(refunded_at="2026-11-25T10:00:00"), "malformed notification"),
        (b"[1]", "malformed notification"),
        (b"not json", "malformed notification"),
        (json.dumps({"type": "REFUND", "notify_id": "N"}).encode(), "malformed notification"),
    ],
)
def test_malformed_notifications_are_rejected_with_the_reason(body: bytes, reason: str) -> None:
    with pytest.raises(NotificationRejected, match=reason):
        transformers.notification(body)


def test_charge_answers_map_to_states() -> None:
    closed = transformers.charge_reply({"result": "INVALID", "code": "TRADE_CLOSED", "message": "closed"})
    assert (closed.state, closed.decline_code) == (ChargeState.CLOSED, "TRADE_CLOSED")
    used = transformers.charge_reply({"result": "INVALID", "code": "OUT_TRADE_NO_USED"})
    assert used.state is ChargeState.DECLINED
    assert transformers.query_reply({"result": "CLOSED", "amount": None}).state is ChargeState.CLOSED
    with pytest.raises(ValueError):
        transformers.charge_reply({"result": "MAYBE"})


def test_close_answers_map_to_close_results() -> None:
    assert transformers.close_reply({"result": "CLOSED"}).result is CloseResult.CLOSED
    paid = transformers.close_reply({"result": "INVALID", "code": "TRADE_ALREADY_PAID"})
    assert paid.result is CloseResult.ALREADY_PAID
    with pytest.raises(ValueError):
        transformers.close_reply({"result": "INVALID", "code": "SOMETHING_ELSE"})


def test_refund_answers_map_to_refund_states() -> None:
    accepted = transformers.refund_reply(
        {"result": "PROCESSING", "refund_no": "R1", "amount": "1.00", "currency": "CNY", "refunded_at": None}
    )
    assert (accepted.state, accepted.channel_refund_no, accepted.amount) == (
        RefundState.PROCESSING,
        "R1",
        Money(100, "CNY"),
    )
    refused = transformers.refund_reply({"result": "FAILED", "code": "REFUND_AMOUNT_EXCEEDED"})
    assert (refused.state, refused.failure_code) == (RefundState.FAILED, "REFUND_AMOUNT_EXCEEDED")
    assert transformers.refund_reply({"result": "NOT_FOUND"}).state is RefundState.NOT_FOUND
    invalid = transformers.refund_reply({"result": "INVALID", "code": "OUT_REFUND_NO_USED"})
    assert (invalid.state, invalid.failure_code) == (RefundState.FAILED, "OUT_REFUND_NO_USED")
    with pytest.raises(ValueError):
        transformers.refund_reply({"result": "SUCCESS", "amount": "1.001", "currency": "CNY"})
