"""Closing charges at the channel, and one payment charged at two channels (failover after a decline)."""

from __future__ import annotations

import dataclasses

from channel_gateway.adapters.notification_sink import PAYMENT_NOTIFICATION_EVENT
from channel_gateway.domain.channel import ChargeState, CloseResult
from paykit.events.v1.channel_events_pb2 import ChannelNotificationReceived
from paykit.money import Money

from services.channel_gateway.tests.integration.support import (
    CHANNEL_A,
    CHANNEL_B,
    MERCHANT_A,
    MERCHANT_B,
    Stack,
    charge_command,
    eventually,
    unpack_payload,
)


def test_close_of_an_unpaid_charge_closes_it_and_a_repeated_charge_says_closed(stack: Stack) -> None:
    charge = charge_command(stack, CHANNEL_A, Money(990, "CNY"), subject="sim:no_pay")
    stack.loop.run(stack.gateway.charge(charge, CHANNEL_A))
    closed = stack.loop.run(stack.gateway.close(charge.payment_id, CHANNEL_A))
    assert closed.result is CloseResult.CLOSED
    assert stack.loop.run(stack.gateway.query(charge.payment_id, CHANNEL_A)).state is ChargeState.CLOSED
    assert stack.loop.run(stack.gateway.charge(charge, CHANNEL_A)).state is ChargeState.CLOSED
    [row] = stack.rows(
        "select state from charges where payment_id=:p and channel=:c", p=charge.payment_id, c=CHANNEL_A
    )
    assert row.state == "CLOSED"
    operations = stack.rows(
        "select operation from channel_exchanges where payment_id=:p order by id", p=charge.payment_id
    )
    assert [o.operation for o in operations] == ["charge", "close", "query"]


def test_close_before_the_charge_arrives_leaves_nothing_payable(stack: Stack) -> None:
    charge = charge_command(stack, CHANNEL_A, Money(1_500, "CNY"), subject="sim:pay_delay=0")
    # The close overtook the charge (e.g. the charge's first attempt was lost in the network).
    assert stack.loop.run(stack.gateway.close(charge.payment_id, CHANNEL_A)).result is CloseResult.CLOSED
    late = stack.loop.run(stack.gateway.charge(charge, CHANNEL_A))
    assert (late.state, late.decline_code) == (ChargeState.CLOSED, "TRADE_CLOSED")
    trade = stack.sandbox_trade(MERCHANT_A, charge.payment_id)
    assert trade is not None and trade["status"] == "CLOSED" and trade["paid_at"] is None


def test_close_of_a_paid_charge_is_already_paid(stack: Stack) -> None:
    charge = charge_command(stack, CHANNEL_A, Money(300, "CNY"), subject="sim:out_of_order")
    stack.loop.run(stack.gateway.charge(charge, CHANNEL_A))
    reply = stack.loop.run(stack.gateway.close(charge.payment_id, CHANNEL_A))
    assert reply.result is CloseResult.ALREADY_PAID and reply.message


def test_one_payment_declined_at_one_channel_is_charged_and_paid_at_another(stack: Stack) -> None:
    declined = charge_command(stack, CHANNEL_A, Money(4_200, "CNY"), subject="sim:decline")
    assert stack.loop.run(stack.gateway.charge(declined, CHANNEL_A)).state is ChargeState.DECLINED
    # payment-core fails over: the same payment, the other channel (merchant account).
    elsewhere = charge_command(stack, CHANNEL_B, Money(4_200, "CNY"))
    retry = dataclasses.replace(declined, notify_url=elsewhere.notify_url, subject="")
    reply = stack.loop.run(stack.gateway.charge(retry, CHANNEL_B))
    assert reply.state is ChargeState.PENDING

    [(_message, envelope)] = stack.events(declined.order_id, PAYMENT_NOTIFICATION_EVENT)
    event = unpack_payload(envelope, ChannelNotificationReceived)
    assert (event.channel, event.payment_id, event.status) == (CHANNEL_B, declined.payment_id, "SUCCEEDED")
    charges = stack.rows(
        "select channel, state from charges where payment_id=:p order by channel", p=declined.payment_id
    )
    assert [(c.channel, c.state) for c in charges] == [(CHANNEL_A, "DECLINED"), (CHANNEL_B, "PENDING")]
    eventually(lambda: stack.sandbox_trade(MERCHANT_B, declined.payment_id) is not None, "the trade at B")
    assert stack.sandbox_trade(MERCHANT_A, declined.payment_id) is None, "a decline stores no trade"


def test_payment_notification_from_a_channel_that_was_not_charged_is_rejected(stack: Stack) -> None:
    charge = charge_command(stack, CHANNEL_A, Money(100, "CNY"), subject="sim:no_pay")
    stack.loop.run(stack.gateway.charge(charge, CHANNEL_A))
    body = (
        b'{"type": "PAYMENT", "notify_id": "N-forged", "trade_no": "T1", "out_trade_no": "'
        + charge.payment_id.encode()
        + b'", "status": "SUCCESS", "amount": "1.00", "currency": "CNY", "paid_at": null}'
    )
    status, _text = stack.post_notification(CHANNEL_B, MERCHANT_B, body)
    assert status == 400, "not acknowledged: channel B holds no charge of this payment"
    [row] = stack.rows(
        "select verdict, reject_reason from notifications where payment_id=:p", p=charge.payment_id
    )
    assert row.verdict == "REJECTED" and CHANNEL_B in row.reject_reason
