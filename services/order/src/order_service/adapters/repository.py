"""Loading and saving orders; converts rows to domain objects and back."""

from __future__ import annotations

from typing import Any

from paykit.money import Money
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from order_service.adapters.tables import duplicate_payments, orders
from order_service.domain.order import Order, OrderStatus

# Hot statements are built once and executed with parameters, which skips
# constructing them and computing their cache keys on every call.
_ADD = (
    insert(orders)
    .on_conflict_do_nothing(constraint="orders_merchant_order_no_key")
    .returning(orders.c.order_id)
)
_BY_ID = select(orders).where(orders.c.order_id == bindparam("b_order_id"))
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()
_SAVE = update(orders).where(orders.c.order_id == bindparam("b_order_id")).values(updated_at=func.now())


def _to_domain(row: Any) -> Order:
    return Order(
        order_id=row.order_id,
        merchant_id=row.merchant_id,
        merchant_order_no=row.merchant_order_no,
        amount=Money(row.amount_minor, row.currency),
        subject=row.subject,
        status=OrderStatus(row.status),
        created_at=row.created_at,
        expires_at=row.expires_at,
        pay_attempts=row.pay_attempts,
        payment_id=row.payment_id,
        paid_at=row.paid_at,
    )


class OrderRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add_if_absent(self, order: Order) -> bool:
        """Insert unless (merchant_id, merchant_order_no) exists; True when inserted.

        The unique constraint decides, not a prior SELECT, so two concurrent
        CreateOrder calls with the same number cannot both insert.
        """
        inserted = self._session.execute(
            _ADD,
            {
                "order_id": order.order_id,
                "merchant_id": order.merchant_id,
                "merchant_order_no": order.merchant_order_no,
                "amount_minor": order.amount.minor,
                "currency": order.amount.currency,
                "subject": order.subject,
                "status": order.status.value,
                "pay_attempts": order.pay_attempts,
                "created_at": order.created_at,
                "expires_at": order.expires_at,
            },
        ).first()
        return inserted is not None

    def get(self, order_id: str, *, for_update: bool = False) -> Order | None:
        query = _BY_ID_FOR_UPDATE if for_update else _BY_ID
        row = self._session.execute(query, {"b_order_id": order_id}).first()
        return _to_domain(row) if row else None

    def get_by_merchant_order_no(self, merchant_id: str, merchant_order_no: str) -> Order | None:
        row = self._session.execute(
            select(orders).where(
                orders.c.merchant_id == merchant_id, orders.c.merchant_order_no == merchant_order_no
            )
        ).first()
        return _to_domain(row) if row else None

    def save(self, order: Order) -> None:
        self._session.execute(
            _SAVE,
            {
                "b_order_id": order.order_id,
                "status": order.status.value,
                "pay_attempts": order.pay_attempts,
                "payment_id": order.payment_id,
                "paid_at": order.paid_at,
            },
        )

    def record_duplicate_payment(self, order_id: str, payment_id: str) -> None:
        self._session.execute(
            insert(duplicate_payments)
            .values(order_id=order_id, payment_id=payment_id)
            .on_conflict_do_nothing()
        )
