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
from paykit.events.v1.refund_events_pb2 import RefundCreated, RefundFailed, RefundSucceeded
from paykit.messaging.envelope import OutgoingEvent, pack
from paykit.messaging.topics import PAYMENT_EVENTS, REFUND_EVENTS
from paykit.money import Money

from payment_core.domain.payment import Payment
from payment_core.domain.refund import Refund

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
            duplicate_reason=p.duplicate_reason or "",
            auto_refund_id=p.auto_refund_id or "",
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


def refund_created(r: Refund) -> OutgoingEvent:
    return _pack_refund(
        "refund.created",
        r,
        RefundCreated(
            refund_id=r.refund_id,
            payment_id=r.payment_id,
            order_id=r.order_id,
            merchant_id=r.merchant_id,
            amount=money_to_proto(r.amount),
            reason=r.reason,
            automatic=r.automatic,
            channel=r.channel,
        ),
    )


def refund_succeeded(r: Refund, payment_refunded_total: Money) -> OutgoingEvent:
    return _pack_refund(
        "refund.succeeded",
        r,
        RefundSucceeded(
            refund_id=r.refund_id,
            payment_id=r.payment_id,
            order_id=r.order_id,
            merchant_id=r.merchant_id,
            amount=money_to_proto(r.amount),
            payment_refunded_total=money_to_proto(payment_refunded_total),
            channel=r.channel,
            channel_refund_no=r.channel_refund_no or "",
            succeeded_at=timestamp(r.succeeded_at),
            automatic=r.automatic,
        ),
    )


def refund_failed(r: Refund) -> OutgoingEvent:
    return _pack_refund(
        "refund.failed",
        r,
        RefundFailed(
            refund_id=r.refund_id,
            payment_id=r.payment_id,
            order_id=r.order_id,
            merchant_id=r.merchant_id,
            amount=money_to_proto(r.amount),
            failure_code=r.failure_code or "",
            failure_message=r.failure_message or "",
            automatic=r.automatic,
        ),
    )


def _pack_refund(event_type: str, r: Refund, payload: Message) -> OutgoingEvent:
    # Keyed by order id like payment events: one order's money moves stay in order.
    return pack(
        topic=REFUND_EVENTS,
        key=r.order_id,
        event_type=event_type,
        aggregate_type="refund",
        aggregate_id=r.refund_id,
        payload=payload,
        producer=PRODUCER,
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
