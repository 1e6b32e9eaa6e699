"""A refund of (part of) a captured payment and its state machine (no I/O).

PENDING -> PROCESSING -> SUCCEEDED | FAILED. PENDING is stored (and the
amount reserved on the payment) before the channel is asked; PROCESSING once
the channel accepted it; the outcome arrives by answer, notification or
query. A refund the channel refuses outright goes PENDING -> FAILED: no money
moved. A success reported while still PENDING (the notification overtook the
answer) is recorded as PENDING -> PROCESSING -> SUCCEEDED.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from paykit.errors import FailedPrecondition
from paykit.money import Money


class RefundStatus(enum.Enum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


ALLOWED: dict[RefundStatus, frozenset[RefundStatus]] = {
    RefundStatus.PENDING: frozenset({RefundStatus.PROCESSING, RefundStatus.FAILED}),
    RefundStatus.PROCESSING: frozenset({RefundStatus.SUCCEEDED, RefundStatus.FAILED}),
    RefundStatus.SUCCEEDED: frozenset(),
    RefundStatus.FAILED: frozenset(),
}
OPEN_STATES = frozenset({RefundStatus.PENDING, RefundStatus.PROCESSING})
DUPLICATE_PAYMENT_REASON = "DUPLICATE_PAYMENT"


@dataclass(frozen=True)
class Refund:
    refund_id: str
    idempotency_key: str
    payment_id: str
    order_id: str
    merchant_id: str
    amount: Money
    reason: str
    channel: str
    status: RefundStatus
    created_at: datetime
    automatic: bool = False
    channel_refund_no: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    succeeded_at: datetime | None = None
    # When to ask the channel next: submit a PENDING refund, query a PROCESSING one.
    next_attempt_at: datetime | None = None
    attempts: int = 0

    def same_request(self, payment_id: str, amount: Money) -> bool:
        return (self.payment_id, self.amount) == (payment_id, amount)


@dataclass(frozen=True)
class RefundChange:
    refund_id: str
    from_status: RefundStatus
    to_status: RefundStatus
    reason: str
    at: datetime


def transition(refund: Refund, to: RefundStatus, reason: str, at: datetime) -> tuple[Refund, RefundChange]:
    if to not in ALLOWED[refund.status]:
        raise FailedPrecondition(
            f"refund {refund.refund_id} cannot go from {refund.status.value} to {to.value}"
        )
    return replace(refund, status=to), RefundChange(refund.refund_id, refund.status, to, reason, at)


class RefundAnswer(enum.Enum):
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    # The channel has no record: a submit that never arrived; safe to submit again.
    NOT_FOUND = "NOT_FOUND"


@dataclass(frozen=True)
class RefundResult:
    """What a channel said about a refund, by answer, notification or query."""

    answer: RefundAnswer
    channel_refund_no: str = ""
    amount: Money | None = None
    occurred_at: datetime | None = None
    failure_code: str = ""
    failure_message: str = ""


class RefundOutcome(enum.Enum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    ACCEPTED = "ACCEPTED"
    NO_CHANGE = "NO_CHANGE"
    # The channel reported an amount other than the refund's: never a success.
    FLAGGED_AMOUNT_MISMATCH = "FLAGGED_AMOUNT_MISMATCH"


def apply_refund_result(
    refund: Refund, result: RefundResult, at: datetime
) -> tuple[Refund, list[RefundChange], RefundOutcome]:
    """Apply a channel's word about a refund idempotently."""
    if result.amount is not None and result.amount != refund.amount:
        return refund, [], RefundOutcome.FLAGGED_AMOUNT_MISMATCH
    if refund.status not in OPEN_STATES:
        return refund, [], RefundOutcome.NO_CHANGE
    changes: list[RefundChange] = []
    current = replace(refund, channel_refund_no=result.channel_refund_no or refund.channel_refund_no)
    match result.answer:
        case RefundAnswer.PROCESSING:
            if current.status is RefundStatus.PROCESSING:
                return current, [], RefundOutcome.NO_CHANGE
            current, change = transition(current, RefundStatus.PROCESSING, "channel accepted the refund", at)
            return current, [change], RefundOutcome.ACCEPTED
        case RefundAnswer.SUCCEEDED:
            if current.status is RefundStatus.PENDING:
                current, change = transition(
                    current, RefundStatus.PROCESSING, "channel reported the refund before answering", at
                )
                changes.append(change)
            current, change = transition(current, RefundStatus.SUCCEEDED, "channel returned the money", at)
            changes.append(change)
            return (
                replace(current, succeeded_at=result.occurred_at or at, next_attempt_at=None),
                changes,
                RefundOutcome.SUCCEEDED,
            )
        case RefundAnswer.FAILED:
            reason = f"channel refused the refund: {result.failure_code or 'FAILED'} {result.failure_message}"
            current, change = transition(current, RefundStatus.FAILED, reason.strip(), at)
            return (
                replace(
                    current,
                    failure_code=result.failure_code or "CHANNEL_FAILED",
                    failure_message=result.failure_message or None,
                    next_attempt_at=None,
                ),
                [change],
                RefundOutcome.FAILED,
            )
        case RefundAnswer.NOT_FOUND:
            return current, [], RefundOutcome.NO_CHANGE
