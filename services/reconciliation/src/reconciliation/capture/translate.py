"""payment.events / refund.events envelopes -> outcomes of payments and refunds (protobuf stops here).

One internal record per payment and per refund (reconciliation.domain's internal-record
schema), holding its latest known state:

| event             | kind    | our_id     | reference  | channel_txn_id    | status          | occurred_at  |
|-------------------|---------|------------|------------|-------------------|-----------------|--------------|
| payment.succeeded | PAYMENT | payment_id | payment_id | channel_trade_no  | SUCCEEDED       | succeeded_at |
| payment.failed    | PAYMENT | payment_id | payment_id | (none)            | FAILED / CLOSED | envelope's   |
| refund.created    | REFUND  | refund_id  | payment_id | (none)            | PENDING         | envelope's   |
| refund.succeeded  | REFUND  | refund_id  | payment_id | channel_refund_no | SUCCEEDED       | succeeded_at |
| refund.failed     | REFUND  | refund_id  | payment_id | (none)            | FAILED          | envelope's   |

("envelope's": the payload has no time of its own; the envelope's occurred_at, when
payment-core built the event in the transaction that changed the state.)

refund.created is captured because refund.failed names no channel: the refund's channel is
the one its refund.created named (same topic and key, so it comes first). A refund still
PENDING at the channel's cut-off is also worth reconciling: the channel may show it done.
payment.created is not captured: a payment with no outcome moved no money yet.

No payment or refund event carries a fee (fees are accounting's, from ACCOUNTING_FEES), so
fee_minor stays null and the matcher compares no fee for these records.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from google.protobuf.timestamp_pb2 import Timestamp
from paykit.events.v1.envelope_pb2 import Envelope
from paykit.events.v1.payment_events_pb2 import PaymentFailed, PaymentSucceeded
from paykit.events.v1.refund_events_pb2 import RefundCreated, RefundFailed, RefundSucceeded
from paykit.messaging.envelope import PoisonMessage, unpack

from reconciliation.domain import RecordKind, RecordStatus
from reconciliation.service_layer.capture import Outcome

PAYMENT_SUCCEEDED: Final = "payment.succeeded"
PAYMENT_FAILED: Final = "payment.failed"
REFUND_CREATED: Final = "refund.created"
REFUND_SUCCEEDED: Final = "refund.succeeded"
REFUND_FAILED: Final = "refund.failed"
EVENT_TYPES: Final = frozenset(
    {PAYMENT_SUCCEEDED, PAYMENT_FAILED, REFUND_CREATED, REFUND_SUCCEEDED, REFUND_FAILED}
)
# payment-core's failure_code of a payment closed at the channel (payment_core.domain.payment.CLOSED_CODE).
CLOSED_FAILURE_CODE: Final = "CLOSED"


def _instant(ts: Timestamp | None, envelope: Envelope) -> datetime:
    """The event's business time, or when the producer built it if the payload has none."""
    chosen = ts if ts is not None and (ts.seconds or ts.nanos) else envelope.occurred_at
    return chosen.ToDatetime(tzinfo=UTC)


def _named(value: str, name: str, envelope: Envelope) -> str:
    if not value:
        raise PoisonMessage(f"{envelope.event_type} {envelope.event_id} has no {name}")
    return value


def to_outcome(envelope: Envelope) -> Outcome | None:
    """The outcome an event states; None for a payment that failed before any channel was
    chosen (no channel saw money). A malformed payload raises PoisonMessage."""
    match envelope.event_type:
        case "payment.succeeded":
            ps = unpack(envelope, PaymentSucceeded)
            extra = {"duplicate_reason": ps.duplicate_reason, "auto_refund_id": ps.auto_refund_id}
            return _outcome(
                envelope, RecordKind.PAYMENT, ps.payment_id, ps.payment_id, ps.channel,
                ps.channel_trade_no, ps.amount.minor, ps.amount.currency, RecordStatus.SUCCEEDED,
                _instant(ps.succeeded_at, envelope), ps.merchant_id, ps.order_id,
                {k: v for k, v in extra.items() if v},
            )  # fmt: skip
        case "payment.failed":
            pf = unpack(envelope, PaymentFailed)
            if not pf.channel:
                return None
            status = RecordStatus.CLOSED if pf.failure_code == CLOSED_FAILURE_CODE else RecordStatus.FAILED
            return _outcome(
                envelope, RecordKind.PAYMENT, pf.payment_id, pf.payment_id, pf.channel, "",
                pf.amount.minor, pf.amount.currency, status, _instant(None, envelope),
                pf.merchant_id, pf.order_id, {"failure_code": pf.failure_code},
            )  # fmt: skip
        case "refund.created":
            rc = unpack(envelope, RefundCreated)
            return _outcome(
                envelope, RecordKind.REFUND, rc.refund_id, rc.payment_id, rc.channel or None, "",
                rc.amount.minor, rc.amount.currency, RecordStatus.PENDING, _instant(None, envelope),
                rc.merchant_id, rc.order_id, {"automatic": rc.automatic},
            )  # fmt: skip
        case "refund.succeeded":
            rs = unpack(envelope, RefundSucceeded)
            return _outcome(
                envelope, RecordKind.REFUND, rs.refund_id, rs.payment_id, rs.channel or None,
                rs.channel_refund_no, rs.amount.minor, rs.amount.currency, RecordStatus.SUCCEEDED,
                _instant(rs.succeeded_at, envelope), rs.merchant_id, rs.order_id,
                {"automatic": rs.automatic},
            )  # fmt: skip
        case "refund.failed":
            rf = unpack(envelope, RefundFailed)
            return _outcome(
                envelope, RecordKind.REFUND, rf.refund_id, rf.payment_id, None, "",
                rf.amount.minor, rf.amount.currency, RecordStatus.FAILED, _instant(None, envelope),
                rf.merchant_id, rf.order_id, {"automatic": rf.automatic, "failure_code": rf.failure_code},
            )  # fmt: skip
        case other:
            raise PoisonMessage(f"the capture does not handle {other}")


def _outcome(
    envelope: Envelope,
    kind: RecordKind,
    our_id: str,
    reference: str,
    channel: str | None,
    channel_txn_id: str,
    amount_minor: int,
    currency: str,
    status: RecordStatus,
    occurred_at: datetime,
    merchant_id: str,
    order_id: str,
    attributes: dict[str, Any],
) -> Outcome:
    return Outcome(
        kind=kind,
        our_id=_named(our_id, "payment_id" if kind is RecordKind.PAYMENT else "refund_id", envelope),
        reference=_named(reference, "payment_id", envelope),
        channel=channel,
        channel_txn_id=channel_txn_id or None,
        amount_minor=amount_minor,
        currency=currency,
        status=status,
        occurred_at=occurred_at,
        merchant_id=merchant_id,
        order_id=order_id,
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        attributes=attributes,
    )
