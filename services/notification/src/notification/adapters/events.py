"""notification.events as published through the outbox, keyed by order id."""

from __future__ import annotations

from datetime import datetime

from paykit.contracts.convert import timestamp
from paykit.events.v1.notification_events_pb2 import NotificationDead, NotificationDelivered
from paykit.messaging.envelope import OutgoingEvent, pack
from paykit.messaging.topics import NOTIFICATION_EVENTS

from notification.domain.delivery import Delivery

PRODUCER = "notification"


def delivered(delivery: Delivery, at: datetime) -> OutgoingEvent:
    payload = NotificationDelivered(
        delivery_id=delivery.delivery_id,
        endpoint_id=delivery.endpoint_id,
        merchant_id=delivery.merchant_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        order_id=delivery.order_id,
        attempts=delivery.attempts_made,
        delivered_at=timestamp(at),
    )
    return _pack("notification.delivered", delivery, payload)


def dead(delivery: Delivery) -> OutgoingEvent:
    payload = NotificationDead(
        delivery_id=delivery.delivery_id,
        endpoint_id=delivery.endpoint_id,
        merchant_id=delivery.merchant_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        order_id=delivery.order_id,
        attempts=delivery.attempts_made,
        last_error=delivery.last_error,
    )
    return _pack("notification.dead", delivery, payload)


def _pack(
    event_type: str, delivery: Delivery, payload: NotificationDelivered | NotificationDead
) -> OutgoingEvent:
    return pack(
        topic=NOTIFICATION_EVENTS,
        key=delivery.order_id or delivery.delivery_id,
        event_type=event_type,
        aggregate_type="delivery",
        aggregate_id=delivery.delivery_id,
        payload=payload,
        producer=PRODUCER,
    )
