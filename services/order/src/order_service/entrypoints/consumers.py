"""payment.events -> order state, inside the consumer loop's transaction."""

from __future__ import annotations

from paykit.contracts.convert import from_timestamp
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.events.v1.payment_events_pb2 import PaymentFailed, PaymentSucceeded
from paykit.messaging.envelope import unpack
from sqlalchemy.orm import Session

from order_service.service_layer import services
from order_service.service_layer.unit_of_work import SessionTx

CONSUMER_NAME = "order.payment-events"
EVENT_TYPES = ("payment.succeeded", "payment.failed")


def handle_payment_event(session: Session, envelope: Envelope) -> None:
    tx = SessionTx(session)
    match envelope.event_type:
        case "payment.succeeded":
            succeeded = unpack(envelope, PaymentSucceeded)
            services.apply_payment_succeeded(
                tx, succeeded.order_id, succeeded.payment_id, from_timestamp(succeeded.succeeded_at)
            )
        case "payment.failed":
            failed = unpack(envelope, PaymentFailed)
            services.apply_payment_failed(tx, failed.order_id, failed.payment_id)
        case _:
            pass  # other payment events do not move an order
