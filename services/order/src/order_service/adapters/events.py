"""Order domain facts as protobuf events for order.events."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.message import Message
from paykit.contracts.convert import money_to_proto, timestamp
from paykit.events.v1.order_events_pb2 import OrderClosed, OrderCreated, OrderPaid, OrderRefunded
from paykit.messaging.envelope import OutgoingEvent, pack
from paykit.messaging.topics import ORDER_EVENTS
from paykit.money import Money

from order_service.domain.order import Order

PRODUCER = "order"


def order_created(order: Order) -> OutgoingEvent:
    payload = OrderCreated(
        order_id=order.order_id,
        merchant_id=order.merchant_id,
        merchant_order_no=order.merchant_order_no,
        amount=money_to_proto(order.amount),
        expires_at=timestamp(order.expires_at),
    )
    return _pack("order.created", order, payload)


def order_paid(order: Order) -> OutgoingEvent:
    payload = OrderPaid(
        order_id=order.order_id,
        merchant_id=order.merchant_id,
        merchant_order_no=order.merchant_order_no,
        payment_id=order.payment_id or "",
        amount=money_to_proto(order.amount),
        paid_at=timestamp(order.paid_at),
    )
    return _pack("order.paid", order, payload)


def order_closed(order: Order) -> OutgoingEvent:
    payload = OrderClosed(
        order_id=order.order_id,
        merchant_id=order.merchant_id,
        merchant_order_no=order.merchant_order_no,
        reason=order.close_reason or "",
        closed_at=timestamp(order.closed_at),
    )
    return _pack("order.closed", order, payload)


def order_refunded(order: Order, refund_id: str, amount: Money, refunded_at: datetime) -> OutgoingEvent:
    """`order` is the order after the refund: its status and refunded total include it."""
    payload = OrderRefunded(
        order_id=order.order_id,
        merchant_id=order.merchant_id,
        merchant_order_no=order.merchant_order_no,
        payment_id=order.payment_id or "",
        refund_id=refund_id,
        amount=money_to_proto(amount),
        refunded_total=money_to_proto(order.refunded),
        status=order.status.value,
        refunded_at=timestamp(refunded_at),
    )
    return _pack("order.refunded", order, payload)


def _pack(event_type: str, order: Order, payload: Message) -> OutgoingEvent:
    return pack(
        topic=ORDER_EVENTS,
        key=order.order_id,
        event_type=event_type,
        aggregate_type="order",
        aggregate_id=order.order_id,
        payload=payload,
        producer=PRODUCER,
    )
