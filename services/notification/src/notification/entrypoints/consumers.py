"""order.events and refund.events -> deliveries, inside the consumer loop's transaction.

The protobuf payloads stop here: each event becomes EventFacts (domain/payload.py).
A payload that cannot be read (a bad amount) raises, and the consumer loop sends it
to the topic's .dlq instead of blocking its partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from paykit.common.v1.money_pb2 import Money as MoneyProto
from paykit.contracts.convert import from_timestamp, money_from_proto
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.events.v1.order_events_pb2 import OrderClosed, OrderCreated, OrderPaid, OrderRefunded
from paykit.events.v1.refund_events_pb2 import RefundFailed, RefundSucceeded
from paykit.messaging.consumer import BatchHandler, Consumed
from paykit.messaging.envelope import PoisonMessage, unpack
from paykit.money import Money
from sqlalchemy.orm import Session

from notification.domain.endpoint import KNOWN_EVENT_TYPES
from notification.domain.payload import EventFacts, OrderFacts, RefundFacts
from notification.service_layer.fanout import record_events
from notification.service_layer.unit_of_work import SessionTx, now_utc

CONSUMER_NAME = "notification.merchant-webhooks"
EVENT_TYPES = KNOWN_EVENT_TYPES


def batch_handler() -> BatchHandler:
    def handle(session: Session, consumed: Sequence[Consumed]) -> None:
        # Each event's deliveries keep its consumer span's context: the worker's POSTs,
        # later and outside that span, continue the payment's trace from it.
        facts = [replace(facts_of(c.envelope), trace_context=c.carrier) for c in consumed]
        record_events(SessionTx(session), facts, now_utc())

    return handle


def facts_of(envelope: Envelope) -> EventFacts:
    match envelope.event_type:
        case "order.created":
            created = unpack(envelope, OrderCreated)
            amount = money_from_proto(created.amount, "amount")
            order = OrderFacts(created.order_id, created.merchant_order_no, "CREATED", amount)
            return _facts(envelope, created.merchant_id, order)
        case "order.paid":
            paid = unpack(envelope, OrderPaid)
            amount = money_from_proto(paid.amount, "amount")
            order = OrderFacts(paid.order_id, paid.merchant_order_no, "PAID", amount)
            return _facts(envelope, paid.merchant_id, order, paid.payment_id)
        case "order.closed":
            closed = unpack(envelope, OrderClosed)
            order = OrderFacts(
                closed.order_id, closed.merchant_order_no, "CLOSED", close_reason=closed.reason
            )
            return _facts(envelope, closed.merchant_id, order)
        case "order.refunded":
            refunded = unpack(envelope, OrderRefunded)
            total = _optional_money(
                refunded.refunded_total, refunded.HasField("refunded_total"), "refunded_total"
            )
            order = OrderFacts(
                refunded.order_id, refunded.merchant_order_no, refunded.status or None, refunded_total=total
            )
            refund = RefundFacts(refunded.refund_id, money_from_proto(refunded.amount, "amount"), "SUCCEEDED")
            return _facts(envelope, refunded.merchant_id, order, refunded.payment_id, refund)
        case "refund.succeeded":
            ok = unpack(envelope, RefundSucceeded)
            total = _optional_money(
                ok.payment_refunded_total, ok.HasField("payment_refunded_total"), "payment_refunded_total"
            )
            refund = RefundFacts(ok.refund_id, money_from_proto(ok.amount, "amount"), "SUCCEEDED")
            return _facts(
                envelope, ok.merchant_id, OrderFacts(ok.order_id, refunded_total=total), ok.payment_id, refund
            )
        case "refund.failed":
            failed = unpack(envelope, RefundFailed)
            refund = RefundFacts(
                failed.refund_id,
                money_from_proto(failed.amount, "amount"),
                "FAILED",
                failed.failure_code or None,
                failed.failure_message or None,
            )
            return _facts(
                envelope, failed.merchant_id, OrderFacts(failed.order_id), failed.payment_id, refund
            )
        case _:
            raise PoisonMessage(f"notification does not deliver {envelope.event_type}")


def _facts(
    envelope: Envelope,
    merchant_id: str,
    order: OrderFacts,
    payment_id: str = "",
    refund: RefundFacts | None = None,
) -> EventFacts:
    if not merchant_id:
        raise PoisonMessage(f"{envelope.event_type} {envelope.event_id} carries no merchant_id")
    return EventFacts(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        merchant_id=merchant_id,
        occurred_at=from_timestamp(envelope.occurred_at),
        order=order,
        payment_id=payment_id or None,
        refund=refund,
    )


def _optional_money(message: MoneyProto, present: bool, field: str) -> Money | None:
    return money_from_proto(message, field) if present else None
