"""Refund notifications at the webhook: only verified ones about our own refunds are published."""

from __future__ import annotations

import json

from channel_gateway.adapters.notification_sink import REFUND_NOTIFICATION_EVENT
from channel_gateway.domain.channel import ChargeState, RefundState
from paykit.money import Money

from services.channel_gateway.tests.integration.support import (
    CHANNEL_A,
    MERCHANT_A,
    Stack,
    charge_command,
    refund_command,
    unique,
    wait_paid,
)


def _refund_body(payment_id: str, refund_id: str, notify_id: str, amount: str = "1.00") -> bytes:
    return json.dumps(
        {
            "type": "REFUND",
            "notify_id": notify_id,
            "out_trade_no": payment_id,
            "out_refund_no": refund_id,
            "refund_no": "SIMR-FORGED",
            "status": "SUCCESS",
            "amount": amount,
            "currency": "CNY",
            "refunded_at": "2026-11-25T10:00:00+00:00",
        }
    ).encode()


def test_tampered_refund_notification_is_stored_rejected_and_never_published(stack: Stack) -> None:
    charge = charge_command(stack, CHANNEL_A, Money(5_000, "CNY"), subject="sim:out_of_order sim:drop_notify")
    assert stack.loop.run(stack.gateway.charge(charge, CHANNEL_A)).state is ChargeState.PENDING
    # A refund of ours the sandbox never notifies (the trade's drop_notify), so the topic
    # holds only what the webhook below lets through.
    command = refund_command(stack, charge, CHANNEL_A, Money(1_000, "CNY"))
    assert stack.loop.run(stack.gateway.refund(command, CHANNEL_A)).state is RefundState.PROCESSING

    forged_id = unique("N-tampered")
    signed = _refund_body(charge.payment_id, command.refund_id, forged_id, "10.00")
    tampered = signed.replace(b'"10.00"', b'"50.00"')
    status, text = stack.post_notification(CHANNEL_A, MERCHANT_A, tampered, key=b"not-the-channel-key")
    assert (status, text) == (400, "fail")
    [row] = stack.rows(
        "select verdict, reject_reason, published_event_id from notifications "
        "where verdict='REJECTED' and position(:n in convert_from(body, 'UTF8')) > 0",
        n=forged_id,
    )
    assert row.reject_reason == "signature does not match" and row.published_event_id is None

    # A genuine one for the same refund goes through; the tampered one is not beside it.
    genuine_id = unique("N-genuine")
    status, text = stack.post_notification(
        CHANNEL_A, MERCHANT_A, _refund_body(charge.payment_id, command.refund_id, genuine_id, "10.00")
    )
    assert (status, text) == (200, "success")
    published = stack.events(charge.order_id, REFUND_NOTIFICATION_EVENT)
    assert [e.event_type for _m, e in published] == [REFUND_NOTIFICATION_EVENT]
    [stored] = stack.rows("select state from refunds where refund_id=:r", r=command.refund_id)
    assert stored.state == "SUCCEEDED"


def test_refund_notification_for_an_unknown_refund_is_stored_rejected_and_not_acknowledged(
    stack: Stack,
) -> None:
    charge = charge_command(stack, CHANNEL_A, Money(5_000, "CNY"), subject="sim:no_pay")
    stack.loop.run(stack.gateway.charge(charge, CHANNEL_A))
    refund_id = unique("rfd_unknown")
    status, _text = stack.post_notification(
        CHANNEL_A, MERCHANT_A, _refund_body(charge.payment_id, refund_id, unique("N-unknown"))
    )
    assert status == 400
    [row] = stack.rows("select verdict, reject_reason from notifications where refund_id=:r", r=refund_id)
    assert row.verdict == "REJECTED" and refund_id in row.reject_reason


def test_refund_notification_naming_another_payment_is_rejected(stack: Stack) -> None:
    charge = charge_command(stack, CHANNEL_A, Money(5_000, "CNY"), subject="sim:out_of_order sim:drop_notify")
    stack.loop.run(stack.gateway.charge(charge, CHANNEL_A))
    command = refund_command(stack, charge, CHANNEL_A, Money(100, "CNY"))
    stack.loop.run(stack.gateway.refund(command, CHANNEL_A))
    status, _text = stack.post_notification(
        CHANNEL_A, MERCHANT_A, _refund_body("pay_someone_else", command.refund_id, unique("N-other"))
    )
    assert status == 400
    rows = stack.rows("select verdict from notifications where refund_id=:r", r=command.refund_id)
    assert [r.verdict for r in rows] == ["REJECTED"]


def test_duplicated_refund_notifications_publish_one_event_id(stack: Stack) -> None:
    charge = charge_command(
        stack, CHANNEL_A, Money(5_000, "CNY"), subject="sim:pay_delay=0 sim:duplicate_notify=3"
    )
    stack.loop.run(stack.gateway.charge(charge, CHANNEL_A))
    wait_paid(stack, charge.payment_id, CHANNEL_A)
    command = refund_command(stack, charge, CHANNEL_A, Money(100, "CNY"))
    stack.loop.run(stack.gateway.refund(command, CHANNEL_A))
    published = stack.events(charge.order_id, REFUND_NOTIFICATION_EVENT, count=3)
    assert len({e.event_id for _m, e in published}) == 1, "one channel notification, one event id"
    rows = stack.rows("select verdict from notifications where refund_id=:r", r=command.refund_id)
    assert [r.verdict for r in rows] == ["PUBLISHED"] * 3
