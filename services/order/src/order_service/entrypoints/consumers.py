"""payment.events and refund.events -> order state, inside the consumer loop's transaction."""

from __future__ import annotations

from paykit.contracts.convert import from_timestamp, money_from_proto
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.events.v1.payment_events_pb2 import PaymentFailed, PaymentSucceeded
from paykit.events.v1.refund_events_pb2 import RefundSucceeded
from paykit.messaging.envelope import unpack
from sqlalchemy.orm import Session

from order_service.service_layer import services
from order_service.service_layer.unit_of_work import SessionTx

# The inbox key: kept from when only payment.events was consumed, so the
# events recorded under it stay deduplicated across the upgrade.
CONSUMER_NAME = "order.payment-events"
# refund.created and refund.failed do not move an order (only succeeded
# refunds count), so they are acknowledged without a transaction.
EVENT_TYPES = ("payment.succeeded", "payment.failed", "refund.succeeded")


def handle_event(session: Session, envelope: Envelope) -> None:
    tx = SessionTx(session)
    match envelope.event_type:
        case "payment.succeeded":
            succeeded = unpack(envelope, PaymentSucceeded)
            services.apply_payment_succeeded(
                tx,
                succeeded.order_id,
                succeeded.payment_id,
                from_timestamp(succeeded.succeeded_at),
                succeeded.duplicate_reason,
            )
        case "payment.failed":
            failed = unpack(envelope, PaymentFailed)
            services.apply_payment_failed(tx, failed.order_id, failed.payment_id)
        case "refund.succeeded":
            services.apply_refund_succeeded(tx, _succeeded_refund(unpack(envelope, RefundSucceeded)))
        case _:
            pass  # other payment and refund events do not move an order


def _succeeded_refund(event: RefundSucceeded) -> services.SucceededRefund:
    # A malformed amount raises InvalidArgument: the event is poison and goes to the DLQ.
    return services.SucceededRefund(
        refund_id=event.refund_id,
        order_id=event.order_id,
        payment_id=event.payment_id,
        amount=money_from_proto(event.amount, "amount"),
        payment_refunded_total=money_from_proto(event.payment_refunded_total, "payment_refunded_total"),
        succeeded_at=from_timestamp(event.succeeded_at),
    )
