"""The merchant order and its state machine (no I/O).

CREATED -> PAYING -> PAID -> (PARTIALLY_REFUNDED -> REFUNDED); CREATED or
PAYING -> CLOSED. Each transition is one function that refuses an illegal
move with FailedPrecondition and otherwise returns the changed order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import assert_never

from paykit.errors import FailedPrecondition, invariant
from paykit.money import Money


class OrderStatus(enum.Enum):
    CREATED = "CREATED"
    PAYING = "PAYING"
    PAID = "PAID"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"
    CLOSED = "CLOSED"


PAID_STATUSES = frozenset({OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED})
OPEN_STATUSES = frozenset({OrderStatus.CREATED, OrderStatus.PAYING})


@dataclass(frozen=True)
class Order:
    order_id: str
    merchant_id: str
    merchant_order_no: str
    amount: Money
    subject: str
    status: OrderStatus
    created_at: datetime
    expires_at: datetime
    pay_attempts: int = 0
    payment_id: str | None = None
    paid_at: datetime | None = None
    pay_method: str | None = None
    close_reason: str | None = None
    closed_at: datetime | None = None
    # Payments that succeeded after the order was paid or closed (payment-core refunds them).
    duplicate_payment_ids: tuple[str, ...] = ()
    # Expiry retry schedule: when the expiry scheduler may try closing the order
    # again, and how often payment-core has not confirmed the close so far.
    next_close_at: datetime | None = None
    close_attempts: int = 0
    # Sum of the succeeded refunds of the order's own payment. Required, so
    # nobody builds an order whose refunded amount is in the wrong currency.
    refunded: Money = field(kw_only=True)

    def __post_init__(self) -> None:
        # Checked on every construction, so every transition (they all go
        # through `replace`) re-checks it too.
        invariant(
            self.refunded.currency == self.amount.currency,
            f"order {self.order_id}: refunded {self.refunded} is not in {self.amount.currency}",
        )
        invariant(
            0 <= self.refunded.minor <= self.amount.minor,
            f"order {self.order_id}: refunded {self.refunded} outside 0..{self.amount}",
        )

    def same_request(self, amount: Money, subject: str) -> bool:
        """Whether a repeated CreateOrder asks for exactly this order."""
        return self.amount == amount and self.subject == subject

    @property
    def payment_idempotency_key(self) -> str:
        # One key per pay attempt: a retried PayOrder reuses it, a new attempt
        # (after a decline, or on another method) gets a fresh one.
        return f"{self.order_id}/{self.pay_attempts}"

    @property
    def refundable(self) -> Money:
        return self.amount - self.refunded


class PaidOutcome(enum.Enum):
    MARKED_PAID = "MARKED_PAID"
    ALREADY_PAID = "ALREADY_PAID"
    # A success for an order already paid by another payment, or closed.
    DUPLICATE_PAYMENT = "DUPLICATE_PAYMENT"


class RefundOutcome(enum.Enum):
    APPLIED = "APPLIED"
    # A refund of a payment that never paid this order (a duplicate, or an
    # attempt that lost): the order's amounts do not include it.
    NOT_THE_ORDERS_PAYMENT = "NOT_THE_ORDERS_PAYMENT"


class RefundCheck(enum.Enum):
    WITHIN_REFUNDABLE = "WITHIN_REFUNDABLE"
    # More than what is left by the refunds we know succeeded. Refused by
    # payment-core for a new refund, but a replay of a refund that already
    # succeeded must still get its first answer there.
    ABOVE_REFUNDABLE = "ABOVE_REFUNDABLE"


# -- paying ---------------------------------------------------------------------------


def start_paying(order: Order, method: str, now: datetime) -> Order:
    match order.status:
        case OrderStatus.CREATED:
            _refuse_if_expired(order, now)
            return _new_attempt(order, method)
        case OrderStatus.PAYING:
            # A retried PayOrder continues the attempt in flight. Rows from
            # before pay_method was stored have None: only "qr" existed then.
            if order.pay_method in (None, method):
                return order
            # The payer switched channel. The old payment stays open at
            # payment-core; if both get paid, payment-core refunds the second.
            _refuse_if_expired(order, now)
            return _new_attempt(order, method)
        case OrderStatus.PAID | OrderStatus.PARTIALLY_REFUNDED | OrderStatus.REFUNDED:
            raise FailedPrecondition(f"order {order.order_id} is already paid")
        case OrderStatus.CLOSED:
            raise FailedPrecondition(f"order {order.order_id} is closed")
        case _ as unreachable:
            assert_never(unreachable)


def _refuse_if_expired(order: Order, now: datetime) -> None:
    if now >= order.expires_at:
        raise FailedPrecondition(f"order {order.order_id} expired at {order.expires_at.isoformat()}")


def _new_attempt(order: Order, method: str) -> Order:
    return replace(
        order,
        status=OrderStatus.PAYING,
        pay_attempts=order.pay_attempts + 1,
        payment_id=None,
        pay_method=method,
    )


def attach_payment(order: Order, payment_id: str, attempt: int) -> Order:
    """Record the payment payment-core created for pay attempt `attempt`.

    A slow answer for an attempt the payer has since replaced (another method)
    must not overwrite the new attempt's payment, hence the attempt number.
    """
    if (
        order.status is OrderStatus.PAYING
        and order.pay_attempts == attempt
        and order.payment_id in (None, payment_id)
    ):
        return replace(order, payment_id=payment_id)
    return order  # the payment's outcome already moved the order on; keep it


def mark_paid(
    order: Order, payment_id: str, paid_at: datetime, duplicate_reason: str = ""
) -> tuple[Order, PaidOutcome]:
    if order.status in PAID_STATUSES and order.payment_id == payment_id:
        return order, PaidOutcome.ALREADY_PAID
    if duplicate_reason or payment_id in order.duplicate_payment_ids:
        # payment-core judged it a duplicate (order paid by another payment, or
        # closed there) and refunds it: it never pays the order, even if a
        # later report of the same payment comes without the reason.
        return _with_duplicate(order, payment_id), PaidOutcome.DUPLICATE_PAYMENT
    match order.status:
        case OrderStatus.CREATED | OrderStatus.PAYING:
            return replace(
                order, status=OrderStatus.PAID, payment_id=payment_id, paid_at=paid_at
            ), PaidOutcome.MARKED_PAID
        case OrderStatus.PAID | OrderStatus.PARTIALLY_REFUNDED | OrderStatus.REFUNDED | OrderStatus.CLOSED:
            return _with_duplicate(order, payment_id), PaidOutcome.DUPLICATE_PAYMENT
        case _ as unreachable:
            assert_never(unreachable)


def _with_duplicate(order: Order, payment_id: str) -> Order:
    if payment_id in order.duplicate_payment_ids:
        return order
    return replace(order, duplicate_payment_ids=(*order.duplicate_payment_ids, payment_id))


def payment_failed(order: Order, payment_id: str) -> Order:
    """A failed attempt returns a paying order to CREATED so the payer can try again."""
    if order.status is OrderStatus.PAYING and order.payment_id in (None, payment_id):
        return replace(order, status=OrderStatus.CREATED, payment_id=None)
    return order


# -- closing --------------------------------------------------------------------------


def needs_payment_close(order: Order) -> bool:
    """Whether payment-core must close the order's payments before the order closes.

    PAYING has a payment in flight. A CREATED order that was paid at before
    may still have one: a payment of a replaced attempt, or one whose failure
    report raced ahead of the next attempt's. Closing it at payment-core also
    tombstones the order there, so a late payment is refunded automatically.
    Only an order never sent to payment-core closes on its own.
    """
    return order.status is OrderStatus.PAYING or (
        order.status is OrderStatus.CREATED and order.pay_attempts > 0
    )


def close(order: Order, reason: str, at: datetime) -> Order:
    match order.status:
        case OrderStatus.CREATED | OrderStatus.PAYING:
            return replace(order, status=OrderStatus.CLOSED, close_reason=reason, closed_at=at)
        case OrderStatus.CLOSED:
            return order  # closing twice is a no-op: the first reason stays
        case OrderStatus.PAID | OrderStatus.PARTIALLY_REFUNDED | OrderStatus.REFUNDED:
            raise FailedPrecondition(f"order {order.order_id} is paid; refund it instead")
        case _ as unreachable:
            assert_never(unreachable)


def defer_close(order: Order, until: datetime) -> Order:
    """Keep other expiry scans off an open order until `until` (a lease, not a failure)."""
    if order.status in OPEN_STATUSES:
        return replace(order, next_close_at=until)
    return order


def postpone_close(order: Order, now: datetime, retry_schedule_s: tuple[float, ...]) -> Order:
    """payment-core did not close the order's payments: try again after the next delay."""
    if order.status not in OPEN_STATUSES:
        return order  # closed or paid meanwhile: nothing left to retry
    delay_s = close_retry_delay_s(order.close_attempts, retry_schedule_s)
    return replace(
        order,
        next_close_at=now + timedelta(seconds=delay_s),
        close_attempts=order.close_attempts + 1,
    )


def close_retry_delay_s(attempts_so_far: int, retry_schedule_s: tuple[float, ...]) -> float:
    """The schedule's delay for this attempt; its last delay repeats (the cap)."""
    invariant(len(retry_schedule_s) > 0, "the close retry schedule is empty")
    return retry_schedule_s[min(attempts_so_far, len(retry_schedule_s) - 1)]


# -- refunds --------------------------------------------------------------------------


def check_refund(order: Order, amount: Money) -> RefundCheck:
    """Whether a merchant may ask to refund `amount` of the order (before payment-core is asked)."""
    if order.status not in PAID_STATUSES:
        raise FailedPrecondition(
            f"order {order.order_id} is {order.status.value}; only a paid order can be refunded"
        )
    if amount > order.amount:
        raise FailedPrecondition(
            f"refund of {amount} exceeds order {order.order_id}'s amount of {order.amount}; "
            f"refundable: {order.refundable}"
        )
    return RefundCheck.WITHIN_REFUNDABLE if amount <= order.refundable else RefundCheck.ABOVE_REFUNDABLE


def counts_as_order_refund(order: Order, payment_id: str) -> bool:
    """Only refunds of the payment that paid the order change it. A closed or
    unpaid order was never paid, so a refund there is of a duplicate payment
    (or of an attempt that lost), and so is one of any other payment."""
    return order.status in PAID_STATUSES and payment_id == order.payment_id


def apply_refund(order: Order, payment_id: str, amount: Money) -> tuple[Order, RefundOutcome]:
    """A refund of `payment_id` for `amount` succeeded at the channel."""
    invariant(amount.is_positive, f"refund of {amount} on order {order.order_id} is not positive")
    if not counts_as_order_refund(order, payment_id):
        return order, RefundOutcome.NOT_THE_ORDERS_PAYMENT
    total = order.refunded + amount
    # payment-core refuses to refund more than was captured, under its row lock.
    invariant(
        total <= order.amount,
        f"refunds of order {order.order_id} total {total}, above its amount {order.amount}",
    )
    status = OrderStatus.REFUNDED if total == order.amount else OrderStatus.PARTIALLY_REFUNDED
    return replace(order, status=status, refunded=total), RefundOutcome.APPLIED
