"""Loading and saving orders; converts rows to domain objects and back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from paykit.errors import invariant
from paykit.money import Money
from sqlalchemy import bindparam, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.orm import Session

from order_service.adapters.tables import OPEN_STATUS_VALUES, duplicate_payments, order_refunds, orders
from order_service.domain.order import Order, OrderStatus

# Hot statements are built once and executed with parameters, which skips
# constructing them and computing their cache keys on every call.
_ADD = (
    insert(orders)
    .on_conflict_do_nothing(constraint="orders_merchant_order_no_key")
    .returning(orders.c.order_id)
)
# An order's duplicate payments come with the order in the same round trip.
_DUPLICATE_IDS = (
    select(
        func.coalesce(
            func.array_agg(
                aggregate_order_by(duplicate_payments.c.payment_id, duplicate_payments.c.detected_at)
            ),
            text("'{}'::text[]"),
        )
    )
    .where(duplicate_payments.c.order_id == orders.c.order_id)
    .scalar_subquery()
    .label("duplicate_payment_ids")
)
_ORDER = select(orders, _DUPLICATE_IDS)
_BY_ID = _ORDER.where(orders.c.order_id == bindparam("b_order_id"))
# OF orders: the lock is on the order row only, not on its duplicate rows.
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update(of=orders)
# Due for an expiry close. SKIP LOCKED: two replicas scanning at once take
# disjoint batches instead of queueing on each other's rows.
_DUE_FOR_CLOSE = (
    _ORDER.where(
        orders.c.status.in_(OPEN_STATUS_VALUES),
        orders.c.expires_at <= bindparam("b_now"),
        or_(orders.c.next_close_at.is_(None), orders.c.next_close_at <= bindparam("b_now")),
    )
    .order_by(orders.c.expires_at)
    .limit(bindparam("b_limit"))
    .with_for_update(of=orders, skip_locked=True)
)
_SAVE = update(orders).where(orders.c.order_id == bindparam("b_order_id")).values(updated_at=func.now())
_RECORD_DUPLICATE = insert(duplicate_payments).on_conflict_do_nothing()
_RECORD_REFUND = insert(order_refunds).on_conflict_do_nothing().returning(order_refunds.c.refund_id)
_REFUND_ORDER = select(order_refunds.c.order_id).where(order_refunds.c.refund_id == bindparam("b_refund_id"))


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
        pay_method=row.pay_method,
        close_reason=row.close_reason,
        closed_at=row.closed_at,
        duplicate_payment_ids=tuple(row.duplicate_payment_ids),
        next_close_at=row.next_close_at,
        close_attempts=row.close_attempts,
        refunded=Money(row.refunded_minor, row.currency),
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
            _ORDER.where(orders.c.merchant_id == merchant_id, orders.c.merchant_order_no == merchant_order_no)
        ).first()
        return _to_domain(row) if row else None

    def lock_due_for_close(self, now: datetime, limit: int) -> list[Order]:
        """Open orders expired by `now` whose close is not deferred past `now`, locked."""
        rows = self._session.execute(_DUE_FOR_CLOSE, {"b_now": now, "b_limit": limit}).all()
        return [_to_domain(row) for row in rows]

    def save(self, order: Order) -> None:
        """Write the order's mutable fields (duplicate payments are recorded separately)."""
        self._session.execute(
            _SAVE,
            {
                "b_order_id": order.order_id,
                "status": order.status.value,
                "pay_attempts": order.pay_attempts,
                "payment_id": order.payment_id,
                "paid_at": order.paid_at,
                "refunded_minor": order.refunded.minor,
                "pay_method": order.pay_method,
                "close_reason": order.close_reason,
                "closed_at": order.closed_at,
                "next_close_at": order.next_close_at,
                "close_attempts": order.close_attempts,
            },
        )

    def record_duplicate_payment(self, order_id: str, payment_id: str) -> None:
        self._session.execute(_RECORD_DUPLICATE, {"order_id": order_id, "payment_id": payment_id})

    def record_refund(
        self, order_id: str, refund_id: str, payment_id: str, amount: Money, succeeded_at: datetime
    ) -> bool:
        """True the first time `refund_id` is counted for the order; False when it already was."""
        row = self._session.execute(
            _RECORD_REFUND,
            {
                "refund_id": refund_id,
                "order_id": order_id,
                "payment_id": payment_id,
                "amount_minor": amount.minor,
                "succeeded_at": succeeded_at,
            },
        ).first()
        if row is not None:
            return True
        # Refund ids are global: one already counted for another order is a bug
        # upstream, never a replay to skip quietly.
        counted_for = self._session.execute(_REFUND_ORDER, {"b_refund_id": refund_id}).scalar_one()
        invariant(
            counted_for == order_id,
            f"refund {refund_id} reported for order {order_id} was counted for order {counted_for}",
        )
        return False
