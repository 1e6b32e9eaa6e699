"""The merchant order and its state machine (no I/O).

CREATED -> PAYING -> PAID -> (PARTIALLY_REFUNDED -> REFUNDED); CREATED or
PAYING -> CLOSED. Each transition is one function that refuses an illegal
move with FailedPrecondition and otherwise returns the changed order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime
from typing import assert_never

from paykit.errors import FailedPrecondition
from paykit.money import Money


class OrderStatus(enum.Enum):
    CREATED = "CREATED"
    PAYING = "PAYING"
    PAID = "PAID"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"
    CLOSED = "CLOSED"


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

    def same_request(self, amount: Money, subject: str) -> bool:
        """Whether a repeated CreateOrder asks for exactly this order."""
        return self.amount == amount and self.subject == subject

    @property
    def payment_idempotency_key(self) -> str:
        # One key per pay attempt: a retried PayOrder reuses it, a new attempt
        # after a decline gets a fresh one.
        return f"{self.order_id}/{self.pay_attempts}"


class PaidOutcome(enum.Enum):
    MARKED_PAID = "MARKED_PAID"
    ALREADY_PAID = "ALREADY_PAID"
    # A success for an order already paid by another payment, or closed.
    DUPLICATE_PAYMENT = "DUPLICATE_PAYMENT"


def start_paying(order: Order, now: datetime) -> Order:
    match order.status:
        case OrderStatus.CREATED:
            if now >= order.expires_at:
                raise FailedPrecondition(f"order {order.order_id} expired at {order.expires_at.isoformat()}")
            return replace(
                order,
                status=OrderStatus.PAYING,
                pay_attempts=order.pay_attempts + 1,
                payment_id=None,
            )
        case OrderStatus.PAYING:
            return order  # a retried PayOrder continues the attempt in flight
        case OrderStatus.PAID | OrderStatus.PARTIALLY_REFUNDED | OrderStatus.REFUNDED:
            raise FailedPrecondition(f"order {order.order_id} is already paid")
        case OrderStatus.CLOSED:
            raise FailedPrecondition(f"order {order.order_id} is closed")
        case _ as unreachable:
            assert_never(unreachable)


def attach_payment(order: Order, payment_id: str) -> Order:
    if order.status is OrderStatus.PAYING and order.payment_id in (None, payment_id):
        return replace(order, payment_id=payment_id)
    return order  # the payment's outcome already moved the order on; keep it


def mark_paid(order: Order, payment_id: str, paid_at: datetime) -> tuple[Order, PaidOutcome]:
    match order.status:
        case OrderStatus.CREATED | OrderStatus.PAYING:
            return replace(
                order, status=OrderStatus.PAID, payment_id=payment_id, paid_at=paid_at
            ), PaidOutcome.MARKED_PAID
        case OrderStatus.PAID | OrderStatus.PARTIALLY_REFUNDED | OrderStatus.REFUNDED:
            if order.payment_id == payment_id:
                return order, PaidOutcome.ALREADY_PAID
            return order, PaidOutcome.DUPLICATE_PAYMENT
        case OrderStatus.CLOSED:
            return order, PaidOutcome.DUPLICATE_PAYMENT
        case _ as unreachable:
            assert_never(unreachable)


def payment_failed(order: Order, payment_id: str) -> Order:
    """A failed attempt returns a paying order to CREATED so the payer can try again."""
    if order.status is OrderStatus.PAYING and order.payment_id in (None, payment_id):
        return replace(order, status=OrderStatus.CREATED, payment_id=None)
    return order
