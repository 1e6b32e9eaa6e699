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

from paykit.errors import FailedPrecondition, InvalidArgument
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
# States in which the channel holds the payer's money (some of it may be refunded).
CAPTURED_STATES = frozenset(
    {PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
)
REFUNDABLE_STATES = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED})
# Failure codes we set ourselves after closing the payment at the channel.
CLOSED_CODE = "CLOSED"


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
    expires_at: datetime | None = None
    failure_message: str | None = None
    # Refunds that succeeded, and refunds accepted but not failed (reserved).
    # Invariant: 0 <= refunded <= refund_reserved <= amount.
    refunded_minor: int = 0
    refund_reserved_minor: int = 0
    # Set when this payment succeeded on an order already paid or closed.
    duplicate_reason: str | None = None
    auto_refund_id: str | None = None
    next_query_at: datetime | None = None
    query_attempts: int = 0

    @property
    def refunded(self) -> Money:
        return Money(self.refunded_minor, self.amount.currency)

    @property
    def refundable(self) -> Money:
        return Money(self.amount.minor - self.refund_reserved_minor, self.amount.currency)

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
    return replace(failed, failure_code=code, failure_message=reason, next_query_at=None), change


def fail_over(payment: Payment, to_channel: str, reason: str, at: datetime) -> tuple[Payment, StateChange]:
    """The channel refused before taking money: the same payment tries the next channel.

    Only from PROCESSING, which is where a refusal leaves us; the recorded
    change is PROCESSING -> PROCESSING with the reason naming both channels.
    """
    if payment.status is not PaymentStatus.PROCESSING:
        raise FailedPrecondition(
            f"payment {payment.payment_id} is {payment.status.value}; only a PROCESSING payment fails over"
        )
    moved = replace(payment, channel=to_channel, channel_trade_no=None, pay_url=None)
    return moved, StateChange(payment.payment_id, payment.status, payment.status, reason, at)


def mark_duplicate(payment: Payment, reason: str, auto_refund_id: str) -> Payment:
    """A success on an order already paid or closed: the money is real and goes back by itself."""
    if payment.status not in CAPTURED_STATES:
        raise FailedPrecondition(f"payment {payment.payment_id} is {payment.status.value}, not captured")
    return replace(payment, duplicate_reason=reason, auto_refund_id=auto_refund_id)


# -- refunds against the payment ---------------------------------------------


def reserve_refund(payment: Payment, amount: Money) -> Payment:
    """Hold `amount` of the captured money for a refund; refused above what is left.

    Called under the payment's row lock, so concurrent refunds see each
    other's reservations and together never exceed the captured amount.
    """
    if amount.currency != payment.amount.currency:
        raise InvalidArgument(
            "amount.currency",
            f"must be the payment's currency {payment.amount.currency}, got {amount.currency}",
        )
    if not amount.is_positive:
        raise InvalidArgument("amount.minor", f"must be positive, got {amount.minor}")
    if payment.status not in REFUNDABLE_STATES:
        raise FailedPrecondition(
            f"payment {payment.payment_id} is {payment.status.value}; "
            "only a succeeded payment can be refunded"
        )
    if amount.minor > payment.refundable.minor:
        raise FailedPrecondition(
            f"refund of {amount} exceeds what is refundable on payment {payment.payment_id}: "
            f"{payment.refundable} (captured {payment.amount}, already refunded or in progress "
            f"{Money(payment.refund_reserved_minor, payment.amount.currency)})"
        )
    return replace(payment, refund_reserved_minor=payment.refund_reserved_minor + amount.minor)


def release_refund(payment: Payment, amount: Money) -> Payment:
    """A refund failed at the channel: its amount is refundable again."""
    if amount.minor > payment.refund_reserved_minor - payment.refunded_minor:
        raise FailedPrecondition(f"payment {payment.payment_id} has no reservation of {amount} to release")
    return replace(payment, refund_reserved_minor=payment.refund_reserved_minor - amount.minor)


def record_refund(
    payment: Payment, amount: Money, refund_id: str, at: datetime
) -> tuple[Payment, StateChange]:
    """A refund succeeded: SUCCEEDED/PARTIALLY_REFUNDED -> PARTIALLY_REFUNDED or REFUNDED."""
    refunded_minor = payment.refunded_minor + amount.minor
    if refunded_minor > payment.refund_reserved_minor:
        raise FailedPrecondition(
            f"refund {refund_id} of {amount} was never reserved on payment {payment.payment_id}"
        )
    to = (
        PaymentStatus.REFUNDED if refunded_minor == payment.amount.minor else PaymentStatus.PARTIALLY_REFUNDED
    )
    moved, change = transition(payment, to, f"refund {refund_id} of {amount} succeeded", at)
    return replace(moved, refunded_minor=refunded_minor), change


class ResultOutcome(enum.Enum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    NO_CHANGE = "NO_CHANGE"
    # The channel reported something we must not act on; needs attention.
    FLAGGED_AMOUNT_MISMATCH = "FLAGGED_AMOUNT_MISMATCH"
    FLAGGED_SUCCESS_AFTER_FAILURE = "FLAGGED_SUCCESS_AFTER_FAILURE"
    # A channel other than the one the payment is at spoke about it.
    FLAGGED_CHANNEL_MISMATCH = "FLAGGED_CHANNEL_MISMATCH"


FLAGGED_OUTCOMES = frozenset(
    {
        ResultOutcome.FLAGGED_AMOUNT_MISMATCH,
        ResultOutcome.FLAGGED_SUCCESS_AFTER_FAILURE,
        ResultOutcome.FLAGGED_CHANNEL_MISMATCH,
    }
)


@dataclass(frozen=True)
class ChannelResult:
    """What a channel said about a charge, by notification or query."""

    succeeded: bool
    amount: Money
    channel_trade_no: str
    occurred_at: datetime
    failure_code: str = ""
    # Which channel said it; empty when it is the payment's own channel by construction.
    channel: str = ""


def apply_channel_result(
    payment: Payment, result: ChannelResult, at: datetime
) -> tuple[Payment, StateChange | None, ResultOutcome]:
    """Apply a channel's word idempotently; a mismatched amount is never a success."""
    if result.channel and result.channel != payment.channel:
        return payment, None, ResultOutcome.FLAGGED_CHANNEL_MISMATCH
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
            next_query_at=None,
        )
        return succeeded, change, ResultOutcome.SUCCEEDED
    failed, change = fail(payment, result.failure_code or "CHANNEL_FAILED", "channel reported failure", at)
    return failed, change, ResultOutcome.FAILED
