"""payment.events and refund.events -> journal entries, inside the consumer loop's transaction.

An event the ledger must refuse (a balance that must not go negative would,
its capture is unknown, its amount does not parse) is rolled back to a
savepoint and recorded in posting_failures with the reason: nothing of it is
posted, the failure is visible (ListPostingFailures), and the stream goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from paykit.contracts.convert import from_timestamp, money_from_proto
from paykit.errors import DomainError
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.events.v1.payment_events_pb2 import PaymentSucceeded
from paykit.events.v1.refund_events_pb2 import RefundSucceeded
from paykit.messaging.envelope import unpack
from paykit.money import AmountError, CurrencyError
from sqlalchemy.orm import Session

from accounting.domain.posting_rules import Captured, Refunded
from accounting.service_layer.ledger import Policy, post_capture, post_refund
from accounting.service_layer.unit_of_work import SessionTx

log = logging.getLogger(__name__)

CONSUMER_NAME = "accounting.money-events"
EVENT_TYPES = ("payment.succeeded", "refund.succeeded")


def handler(policy: Policy) -> Callable[[Session, Envelope], None]:
    def handle(session: Session, envelope: Envelope) -> None:
        tx = SessionTx(session)
        try:
            with session.begin_nested():
                _apply(tx, envelope, policy)
        except (DomainError, AmountError, CurrencyError) as exc:
            reason = getattr(exc, "message", None) or str(exc)
            log.warning("posting refused", extra={"event_id": envelope.event_id, "reason": reason})
            tx.ledger.record_failure(
                envelope.event_id, envelope.event_type, reason, envelope.SerializeToString()
            )

    return handle


def _apply(tx: SessionTx, envelope: Envelope, policy: Policy) -> None:
    match envelope.event_type:
        case "payment.succeeded":
            paid = unpack(envelope, PaymentSucceeded)
            fact = Captured(
                event_id=envelope.event_id,
                payment_id=paid.payment_id,
                merchant_id=paid.merchant_id,
                channel=paid.channel,
                amount=money_from_proto(paid.amount, "amount"),
                at=from_timestamp(paid.succeeded_at),
                duplicate=bool(paid.duplicate_reason),
            )
            post_capture(tx, fact, policy)
        case "refund.succeeded":
            refunded = unpack(envelope, RefundSucceeded)
            post_refund(
                tx,
                Refunded(
                    event_id=envelope.event_id,
                    refund_id=refunded.refund_id,
                    payment_id=refunded.payment_id,
                    merchant_id=refunded.merchant_id,
                    channel=refunded.channel,
                    amount=money_from_proto(refunded.amount, "amount"),
                    at=from_timestamp(refunded.succeeded_at),
                    automatic=refunded.automatic,
                ),
                policy,
            )
        case _:
            pass
