"""Order domain facts as protobuf events for order.events."""

from __future__ import annotations

from paykit.contracts.convert import money_to_proto, timestamp
from paykit.events.v1.order_events_pb2 import OrderCreated, OrderPaid
from paykit.messaging.envelope import OutgoingEvent, pack
from paykit.messaging.topics import ORDER_EVENTS

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


def _pack(event_type: str, order: Order, payload: OrderCreated | OrderPaid) -> OutgoingEvent:
    return pack(
        topic=ORDER_EVENTS,
        key=order.order_id,
        event_type=event_type,
        aggregate_type="order",
        aggregate_id=order.order_id,
        payload=payload,
        producer=PRODUCER,
    )
