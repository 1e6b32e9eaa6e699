"""Payment domain facts as protobuf events for payment.events (keyed by order id)."""

from __future__ import annotations

from google.protobuf.message import Message
from paykit.contracts.convert import money_to_proto, timestamp
from paykit.events.v1.payment_events_pb2 import (
    PaymentCreated,
    PaymentFailed,
    PaymentFlagged,
    PaymentSucceeded,
)
from paykit.messaging.envelope import OutgoingEvent, pack
from paykit.messaging.topics import PAYMENT_EVENTS
from paykit.money import Money

from payment_core.domain.payment import Payment

PRODUCER = "payment-core"


def payment_created(p: Payment) -> OutgoingEvent:
    return _pack(
        "payment.created",
        p,
        PaymentCreated(
            payment_id=p.payment_id,
            order_id=p.order_id,
            merchant_id=p.merchant_id,
            amount=money_to_proto(p.amount),
            method=p.method,
            channel=p.channel,
        ),
    )


def payment_succeeded(p: Payment) -> OutgoingEvent:
    return _pack(
        "payment.succeeded",
        p,
        PaymentSucceeded(
            payment_id=p.payment_id,
            order_id=p.order_id,
            merchant_id=p.merchant_id,
            amount=money_to_proto(p.amount),
            channel=p.channel,
            channel_trade_no=p.channel_trade_no or "",
            succeeded_at=timestamp(p.succeeded_at),
        ),
    )


def payment_failed(p: Payment, message: str) -> OutgoingEvent:
    return _pack(
        "payment.failed",
        p,
        PaymentFailed(
            payment_id=p.payment_id,
            order_id=p.order_id,
            merchant_id=p.merchant_id,
            amount=money_to_proto(p.amount),
            channel=p.channel,
            failure_code=p.failure_code or "",
            failure_message=message,
        ),
    )


def payment_flagged(p: Payment, reason: str, reported: Money, notification_id: str) -> OutgoingEvent:
    return _pack(
        "payment.flagged",
        p,
        PaymentFlagged(
            payment_id=p.payment_id,
            order_id=p.order_id,
            reason=reason,
            expected=money_to_proto(p.amount),
            reported=money_to_proto(reported),
            notification_id=notification_id,
        ),
    )


def _pack(event_type: str, p: Payment, payload: Message) -> OutgoingEvent:
    return pack(
        topic=PAYMENT_EVENTS,
        key=p.order_id,
        event_type=event_type,
        aggregate_type="payment",
        aggregate_id=p.payment_id,
        payload=payload,
        producer=PRODUCER,
    )
