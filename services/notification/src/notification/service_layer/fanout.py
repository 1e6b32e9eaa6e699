"""Consumed events -> one delivery per enabled endpoint of its merchant that wants its type.

A whole consumer batch fans out in a handful of statements (endpoints of every merchant
in the batch, one advisory lock per order, last sequences, one insert), not a handful
per event: at a thousand events a second the per-statement cost is the throughput.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from paykit.ids import IdKind, new_id

from notification.domain.delivery import Delivery, DeliveryStatus
from notification.domain.endpoint import Endpoint
from notification.domain.payload import EventFacts, encode_payload
from notification.service_layer.unit_of_work import NotificationTx


def record_events(tx: NotificationTx, batch: Sequence[EventFacts], now: datetime) -> list[str]:
    """The ids of the deliveries created, in event order; none for a replayed event (unique
    event + endpoint). Events of one order are numbered in the order given."""
    by_merchant = tx.endpoints.of_merchants({facts.merchant_id for facts in batch})
    wanted: list[tuple[EventFacts, list[Endpoint]]] = []
    for facts in batch:
        wanting = [e for e in by_merchant.get(facts.merchant_id, []) if e.wants(facts.event_type)]
        if wanting:
            wanted.append((facts, wanting))
    if not wanted:
        return []
    tx.deliveries.lock_orders([facts.order.order_id for facts, _ in wanted])
    pairs = sorted({(e.endpoint_id, facts.order.order_id) for facts, wanting in wanted for e in wanting})
    last = tx.deliveries.last_sequences(pairs)
    new: list[Delivery] = []
    for facts, wanting in wanted:
        payload = encode_payload(facts)
        for endpoint in wanting:
            key = (endpoint.endpoint_id, facts.order.order_id)
            last[key] = last.get(key, 0) + 1
            new.append(_pending(facts, endpoint, payload, last[key], now))
    inserted = tx.deliveries.add_many(new)
    return [d.delivery_id for d in new if d.delivery_id in inserted]


def _pending(facts: EventFacts, endpoint: Endpoint, payload: bytes, sequence: int, now: datetime) -> Delivery:
    return Delivery(
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
        sequence=sequence,
        created_at=now,
        delivered_at=None,
        trace_context=facts.trace_context,
    )
