"""Refunds through the Gateway against the sandbox, PostgreSQL and Kafka."""

from __future__ import annotations

import pytest
from channel_gateway.adapters.notification_sink import REFUND_NOTIFICATION_EVENT
from channel_gateway.domain.channel import ChargeCommand, ChargeState, RefundState
from paykit.errors import AlreadyExists, Unavailable
from paykit.events.v1.channel_events_pb2 import ChannelRefundNotificationReceived
from paykit.ids import IdKind, deterministic_id
from paykit.money import Money

from services.channel_gateway.tests.integration.support import (
    CHANNEL_A,
    CHANNEL_B,
    MERCHANT_B,
    Stack,
    charge_command,
    eventually,
    refund_command,
    unpack_payload,
    wait_paid,
)


def _paid(stack: Stack, channel: str = CHANNEL_A, amount: Money | None = None) -> ChargeCommand:
    charge = charge_command(stack, channel, amount or Money(10_000, "CNY"), subject="sim:pay_delay=0")
    assert stack.loop.run(stack.gateway.charge(charge, channel)).state is ChargeState.PENDING
    wait_paid(stack, charge.payment_id, channel)
    return charge


def test_refund_is_processing_then_published_as_refund_notification_received(stack: Stack) -> None:
    charge = _paid(stack)
    command = refund_command(stack, charge, CHANNEL_A, Money(2_550, "CNY"))
    reply = stack.loop.run(stack.gateway.refund(command, CHANNEL_A))
    assert reply.state is RefundState.PROCESSING
    assert reply.channel_refund_no and reply.amount == Money(2_550, "CNY")

    [(_message, envelope)] = stack.events(charge.order_id, REFUND_NOTIFICATION_EVENT)
    event = unpack_payload(envelope, ChannelRefundNotificationReceived)
    assert (event.refund_id, event.payment_id, event.order_id) == (
        command.refund_id,
        charge.payment_id,
        charge.order_id,
    )
    assert (event.channel, event.channel_refund_no, event.status) == (
        CHANNEL_A,
        reply.channel_refund_no,
        "SUCCEEDED",
    )
    assert (event.amount.minor, event.amount.currency) == (2_550, "CNY")
    assert envelope.aggregate_type == "refund" and envelope.aggregate_id == command.refund_id
    assert envelope.event_id == deterministic_id(IdKind.EVENT, CHANNEL_A, event.notification_id)

    [notification] = stack.rows(
        "select verdict, refund_id, payment_id, published_event_id from notifications where refund_id=:r",
        r=command.refund_id,
    )
    assert (notification.verdict, notification.payment_id) == ("PUBLISHED", charge.payment_id)
    assert notification.published_event_id == envelope.event_id
    [stored] = stack.rows(
        "select state, order_id, amount_minor from refunds where refund_id=:r", r=command.refund_id
    )
    assert (stored.state, stored.order_id, stored.amount_minor) == ("SUCCEEDED", charge.order_id, 2_550)
    exchanges = stack.rows(
        "select operation, response_status from channel_exchanges where refund_id=:r", r=command.refund_id
    )
    assert [(e.operation, e.response_status) for e in exchanges] == [("refund", 200)]


def test_repeated_refund_returns_the_stored_answer_without_asking_the_channel(stack: Stack) -> None:
    charge = _paid(stack)
    command = refund_command(stack, charge, CHANNEL_A, Money(1_000, "CNY"))
    first = stack.loop.run(stack.gateway.refund(command, CHANNEL_A))
    stack.events(charge.order_id, REFUND_NOTIFICATION_EVENT)
    again = stack.loop.run(stack.gateway.refund(command, CHANNEL_A))
    assert again.channel_refund_no == first.channel_refund_no
    # The stored answer is the channel's latest word: the notification said SUCCEEDED.
    assert again.state is RefundState.SUCCEEDED
    calls = stack.rows("select count(*) from channel_exchanges where refund_id=:r", r=command.refund_id)
    assert calls[0][0] == 1


@pytest.mark.parametrize("change", ["amount", "payment"])
def test_same_refund_id_for_another_payment_or_amount_is_already_exists(stack: Stack, change: str) -> None:
    charge = _paid(stack)
    other = _paid(stack) if change == "payment" else charge
    command = refund_command(stack, charge, CHANNEL_A, Money(1_000, "CNY"))
    stack.loop.run(stack.gateway.refund(command, CHANNEL_A))
    amount = Money(1_001, "CNY") if change == "amount" else command.amount
    conflicting = refund_command(stack, other, CHANNEL_A, amount, refund_id=command.refund_id)
    with pytest.raises(AlreadyExists, match=command.refund_id):
        stack.loop.run(stack.gateway.refund(conflicting, CHANNEL_A))


def test_refunds_beyond_the_payment_are_failed_by_the_channel(stack: Stack) -> None:
    charge = _paid(stack, amount=Money(1_000, "CNY"))
    first = stack.loop.run(
        stack.gateway.refund(refund_command(stack, charge, CHANNEL_A, Money(700, "CNY")), CHANNEL_A)
    )
    assert first.state is RefundState.PROCESSING
    over = refund_command(stack, charge, CHANNEL_A, Money(301, "CNY"))
    reply = stack.loop.run(stack.gateway.refund(over, CHANNEL_A))
    assert (reply.state, reply.failure_code) == (RefundState.FAILED, "REFUND_AMOUNT_EXCEEDED")
    [stored] = stack.rows("select state, failure_code from refunds where refund_id=:r", r=over.refund_id)
    assert (stored.state, stored.failure_code) == ("FAILED", "REFUND_AMOUNT_EXCEEDED")


def test_query_refund_follows_the_refund_and_unknown_refunds_are_not_found(stack: Stack) -> None:
    charge = _paid(stack)
    stack.sandbox("/v1/admin/config?merchant=SIM-MERCHANT-1", {"refund_delay_ms": 400})
    command = refund_command(stack, charge, CHANNEL_A, Money(100, "CNY"))
    stack.loop.run(stack.gateway.refund(command, CHANNEL_A))
    early = stack.loop.run(stack.gateway.query_refund(command.refund_id, charge.payment_id, CHANNEL_A))
    assert early.state is RefundState.PROCESSING

    def succeeded() -> bool:
        reply = stack.loop.run(stack.gateway.query_refund(command.refund_id, charge.payment_id, CHANNEL_A))
        return reply.state is RefundState.SUCCEEDED

    eventually(succeeded, "the refund to succeed")
    late = stack.loop.run(stack.gateway.query_refund(command.refund_id, charge.payment_id, CHANNEL_A))
    assert late.amount == Money(100, "CNY") and late.refunded_at is not None
    unknown = stack.loop.run(stack.gateway.query_refund("rfd_nothing", charge.payment_id, CHANNEL_A))
    assert unknown.state is RefundState.NOT_FOUND


def test_refund_during_an_outage_is_unavailable_and_asked_again_once_the_channel_is_back(
    stack: Stack,
) -> None:
    charge = _paid(stack, CHANNEL_B)
    stack.sandbox(f"/v1/admin/config?merchant={MERCHANT_B}", {"unavailable": True})
    command = refund_command(stack, charge, CHANNEL_B, Money(500, "CNY"))
    with pytest.raises(Unavailable, match="HTTP 503"):
        stack.loop.run(stack.gateway.refund(command, CHANNEL_B))
    [failed] = stack.rows(
        "select response_status, error from channel_exchanges where refund_id=:r", r=command.refund_id
    )
    assert failed.response_status == 503 and "HTTP 503" in failed.error
    stack.sandbox(f"/v1/admin/config?merchant={MERCHANT_B}", {"unavailable": False})
    assert stack.loop.run(stack.gateway.refund(command, CHANNEL_B)).state is RefundState.PROCESSING
    stack.events(charge.order_id, REFUND_NOTIFICATION_EVENT)
