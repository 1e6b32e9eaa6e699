"""A consumed event -> one delivery per enabled endpoint of its merchant that wants its type."""

from __future__ import annotations

from datetime import datetime

from paykit.ids import IdKind, new_id

from notification.domain.delivery import Delivery, DeliveryStatus
from notification.domain.payload import EventFacts, encode_payload
from notification.service_layer.unit_of_work import NotificationTx


def record_event(tx: NotificationTx, facts: EventFacts, now: datetime) -> list[str]:
    """The ids of the deliveries created; none for a replayed event (unique event + endpoint)."""
    wanting = [e for e in tx.endpoints.of_merchant(facts.merchant_id) if e.wants(facts.event_type)]
    if not wanting:
        return []
    payload = encode_payload(facts)
    tx.deliveries.lock_order(facts.order.order_id)
    created = []
    for endpoint in wanting:
        delivery = Delivery(
            delivery_id=new_id(IdKind.DELIVERY),
            endpoint_id=endpoint.endpoint_id,
            merchant_id=facts.merchant_id,
            event_id=facts.event_id,
            event_type=facts.event_type,
            order_id=facts.order.order_id,
            payload=payload,
            status=DeliveryStatus.PENDING,
            attempts_made=0,
            round_attempts=0,
            next_attempt_at=now,
            sequence=tx.deliveries.next_sequence(endpoint.endpoint_id, facts.order.order_id),
            created_at=now,
            delivered_at=None,
        )
        if tx.deliveries.add(delivery):
            created.append(delivery.delivery_id)
    return created
