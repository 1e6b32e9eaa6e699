"""The payment attempt and its state machine (no I/O).

INIT -> PROCESSING -> SUCCEEDED | FAILED; PROCESSING -> UNKNOWN when the
channel did not answer, resolved only by a query or a notification;
SUCCEEDED -> (PARTIALLY_)REFUNDED. Every transition returns the new payment
and the StateChange to record; an illegal one raises FailedPrecondition.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from paykit.errors import FailedPrecondition
from paykit.money import Money


class PaymentStatus(enum.Enum):
    INIT = "INIT"
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"


ALLOWED: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.INIT: frozenset({PaymentStatus.PROCESSING}),
    PaymentStatus.PROCESSING: frozenset(
        {PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.UNKNOWN}
    ),
    PaymentStatus.UNKNOWN: frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.FAILED}),
    PaymentStatus.SUCCEEDED: frozenset({PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}),
    PaymentStatus.PARTIALLY_REFUNDED: frozenset({PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}),
    PaymentStatus.FAILED: frozenset(),
    PaymentStatus.REFUNDED: frozenset(),
}
# States where the money's fate at the channel is still open.
OPEN_STATES = frozenset({PaymentStatus.PROCESSING, PaymentStatus.UNKNOWN})


@dataclass(frozen=True)
class Payment:
    payment_id: str
    idempotency_key: str
    order_id: str
    merchant_id: str
    amount: Money
    method: str
    channel: str
    subject: str
    status: PaymentStatus
    created_at: datetime
    channel_trade_no: str | None = None
    pay_url: str | None = None
    failure_code: str | None = None
    succeeded_at: datetime | None = None

    def same_request(self, order_id: str, merchant_id: str, amount: Money, method: str) -> bool:
        return (self.order_id, self.merchant_id, self.amount, self.method) == (
            order_id,
            merchant_id,
            amount,
            method,
        )


@dataclass(frozen=True)
class StateChange:
    payment_id: str
    from_status: PaymentStatus
    to_status: PaymentStatus
    reason: str
    at: datetime


def transition(payment: Payment, to: PaymentStatus, reason: str, at: datetime) -> tuple[Payment, StateChange]:
    if to not in ALLOWED[payment.status]:
        raise FailedPrecondition(
            f"payment {payment.payment_id} cannot go from {payment.status.value} to {to.value}"
        )
    return replace(payment, status=to), StateChange(payment.payment_id, payment.status, to, reason, at)


def start_processing(payment: Payment, at: datetime) -> tuple[Payment, StateChange]:
    return transition(payment, PaymentStatus.PROCESSING, "stored before calling the channel", at)


def record_channel_acceptance(payment: Payment, channel_trade_no: str, pay_url: str) -> Payment:
    """The channel accepted the charge (pending the payer); not a state change."""
    return replace(payment, channel_trade_no=channel_trade_no or payment.channel_trade_no, pay_url=pay_url)


def mark_unknown(payment: Payment, reason: str, at: datetime) -> tuple[Payment, StateChange]:
    return transition(payment, PaymentStatus.UNKNOWN, reason, at)


def fail(payment: Payment, code: str, reason: str, at: datetime) -> tuple[Payment, StateChange]:
    failed, change = transition(payment, PaymentStatus.FAILED, reason, at)
    return replace(failed, failure_code=code), change


class ResultOutcome(enum.Enum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    NO_CHANGE = "NO_CHANGE"
    # The channel reported something we must not act on; needs attention.
    FLAGGED_AMOUNT_MISMATCH = "FLAGGED_AMOUNT_MISMATCH"
    FLAGGED_SUCCESS_AFTER_FAILURE = "FLAGGED_SUCCESS_AFTER_FAILURE"


@dataclass(frozen=True)
class ChannelResult:
    """What a channel said about a charge, by notification or query."""

    succeeded: bool
    amount: Money
    channel_trade_no: str
    occurred_at: datetime
    failure_code: str = ""


def apply_channel_result(
    payment: Payment, result: ChannelResult, at: datetime
) -> tuple[Payment, StateChange | None, ResultOutcome]:
    """Apply a channel's word idempotently; a mismatched amount is never a success."""
    if result.amount != payment.amount:
        # Compared as Money: a different currency is a mismatch too, never converted.
        return payment, None, ResultOutcome.FLAGGED_AMOUNT_MISMATCH
    if payment.status not in OPEN_STATES:
        if result.succeeded and payment.status is PaymentStatus.FAILED:
            return payment, None, ResultOutcome.FLAGGED_SUCCESS_AFTER_FAILURE
        return payment, None, ResultOutcome.NO_CHANGE
    if result.succeeded:
        succeeded, change = transition(payment, PaymentStatus.SUCCEEDED, "channel confirmed payment", at)
        succeeded = replace(
            succeeded,
            channel_trade_no=result.channel_trade_no or payment.channel_trade_no,
            succeeded_at=result.occurred_at,
        )
        return succeeded, change, ResultOutcome.SUCCEEDED
    failed, change = fail(payment, result.failure_code or "CHANNEL_FAILED", "channel reported failure", at)
    return failed, change, ResultOutcome.FAILED
