"""Loading and saving payments, their state changes and flags, and order closures."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from paykit.money import Money
from paykit.telemetry import inject_carrier
from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from payment_core.adapters.tables import order_closures, payment_flags, payment_state_changes, payments
from payment_core.domain.payment import Payment, PaymentStatus, StateChange

# Hot statements are built once and executed with parameters, which skips
# constructing them and computing their cache keys on every call.
_ADD = (
    insert(payments)
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(payments.c.payment_id)
)
_BY_ID = select(payments).where(payments.c.payment_id == bindparam("b_payment_id"))
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()
_SAVE = (
    update(payments).where(payments.c.payment_id == bindparam("b_payment_id")).values(updated_at=func.now())
)
_RECORD_CHANGE = payment_state_changes.insert()
_OPEN = [PaymentStatus.PROCESSING.value, PaymentStatus.UNKNOWN.value]
# Serialises everything that decides "is this order already paid or closed?"
# without locking rows of other payments. Taken after the payment's own row lock.
# The reads run in a statement after the lock's: in READ COMMITTED each statement
# sees what committed before it started, so only then do they see the work of
# whoever held the lock before us (one statement would read its start snapshot).
_LOCK_ORDER = text("SELECT pg_advisory_xact_lock(hashtextextended(:order_id, 7))")
# The payment that paid the order (captured, not itself a duplicate) and the
# order's closure state, in one round trip.
_PAID_BY_AND_CLOSURE = text(
    "SELECT (SELECT payment_id FROM payments WHERE order_id = :order_id AND payment_id <> :payment_id "
    " AND status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED') AND duplicate_reason IS NULL "
    " ORDER BY succeeded_at LIMIT 1) AS paid_by, "
    "(SELECT state FROM order_closures WHERE order_id = :order_id) AS state"
)
_CLOSURE = text("SELECT state FROM order_closures WHERE order_id = :order_id")


def _to_domain(row: Any) -> Payment:
    return Payment(
        payment_id=row.payment_id,
        idempotency_key=row.idempotency_key,
        order_id=row.order_id,
        merchant_id=row.merchant_id,
        amount=Money(row.amount_minor, row.currency),
        method=row.method,
        channel=row.channel,
        subject=row.subject,
        status=PaymentStatus(row.status),
        created_at=row.created_at,
        channel_trade_no=row.channel_trade_no,
        pay_url=row.pay_url,
        failure_code=row.failure_code,
        succeeded_at=row.succeeded_at,
        expires_at=row.expires_at,
        failure_message=row.failure_message,
        refunded_minor=row.refunded_minor,
        refund_reserved_minor=row.refund_reserved_minor,
        duplicate_reason=row.duplicate_reason,
        auto_refund_id=row.auto_refund_id,
        next_query_at=row.next_query_at,
        query_attempts=row.query_attempts,
    )


class PaymentRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add_if_absent(self, payment: Payment) -> bool:
        """Insert unless the idempotency key exists (the unique constraint decides)."""
        inserted = self._session.execute(
            _ADD,
            {
                "payment_id": payment.payment_id,
                "idempotency_key": payment.idempotency_key,
                "order_id": payment.order_id,
                "merchant_id": payment.merchant_id,
                "amount_minor": payment.amount.minor,
                "currency": payment.amount.currency,
                "method": payment.method,
                "channel": payment.channel,
                "subject": payment.subject,
                "status": payment.status.value,
                "created_at": payment.created_at,
                "expires_at": payment.expires_at,
                "next_query_at": payment.next_query_at,
                "trace_headers": inject_carrier(),
            },
        ).first()
        return inserted is not None

    def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        query = _BY_ID_FOR_UPDATE if for_update else _BY_ID
        row = self._session.execute(query, {"b_payment_id": payment_id}).first()
        return _to_domain(row) if row else None

    def get_by_idempotency_key(self, key: str) -> Payment | None:
        row = self._session.execute(select(payments).where(payments.c.idempotency_key == key)).first()
        return _to_domain(row) if row else None

    def save(self, payment: Payment, change: StateChange | None = None) -> None:
        self._session.execute(
            _SAVE,
            {
                "b_payment_id": payment.payment_id,
                "status": payment.status.value,
                "channel": payment.channel,
                "channel_trade_no": payment.channel_trade_no,
                "pay_url": payment.pay_url,
                "failure_code": payment.failure_code,
                "failure_message": payment.failure_message,
                "succeeded_at": payment.succeeded_at,
                "refunded_minor": payment.refunded_minor,
                "refund_reserved_minor": payment.refund_reserved_minor,
                "duplicate_reason": payment.duplicate_reason,
                "auto_refund_id": payment.auto_refund_id,
                "next_query_at": payment.next_query_at,
                "query_attempts": payment.query_attempts,
            },
        )
        if change is not None:
            self.record_change(change)

    def record_change(self, change: StateChange) -> None:
        self._session.execute(
            _RECORD_CHANGE,
            {
                "payment_id": change.payment_id,
                "from_status": change.from_status.value,
                "to_status": change.to_status.value,
                "reason": change.reason,
                "at": change.at,
            },
        )

    def flag(self, payment_id: str, reason: str, detail: str, notification_id: str | None) -> None:
        self._session.execute(
            payment_flags.insert().values(
                payment_id=payment_id, reason=reason, detail=detail, notification_id=notification_id
            )
        )

    def list_by_order(self, order_id: str) -> list[Payment]:
        rows = self._session.execute(
            select(payments).where(payments.c.order_id == order_id).order_by(payments.c.created_at)
        )
        return [_to_domain(row) for row in rows]

    def history(self, payment_id: str) -> list[StateChange]:
        rows = self._session.execute(
            select(payment_state_changes)
            .where(payment_state_changes.c.payment_id == payment_id)
            .order_by(payment_state_changes.c.id)
        )
        return [
            StateChange(
                row.payment_id,
                PaymentStatus(row.from_status),
                PaymentStatus(row.to_status),
                row.reason,
                row.at,
            )
            for row in rows
        ]

    def lock_order_and_read_paid_by(self, order_id: str, payment_id: str) -> tuple[str | None, str | None]:
        """Under the order's lock: (the other payment that paid the order, the closure state)."""
        self._session.execute(_LOCK_ORDER, {"order_id": order_id})
        row = self._session.execute(
            _PAID_BY_AND_CLOSURE, {"order_id": order_id, "payment_id": payment_id}
        ).one()
        return row.paid_by, row.state

    def lock_order_and_read_closure(self, order_id: str) -> str | None:
        self._session.execute(_LOCK_ORDER, {"order_id": order_id})
        return self._session.execute(_CLOSURE, {"order_id": order_id}).scalar_one_or_none()

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[tuple[Payment, dict[str, str]]]:
        """Open payments whose next query is due, leased so no other worker takes them meanwhile.

        A worker that dies holding the lease loses nothing: the payment is due
        again when the lease ends.
        """
        rows = self._session.execute(
            select(payments)
            .where(payments.c.next_query_at <= now, payments.c.status.in_(_OPEN))
            .order_by(payments.c.next_query_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if rows:
            self._session.execute(
                update(payments)
                .where(payments.c.payment_id.in_([r.payment_id for r in rows]))
                .values(next_query_at=now + lease)
            )
        return [(_to_domain(row), dict(row.trace_headers)) for row in rows]

    def count_stuck(self, created_before: datetime) -> dict[tuple[str, PaymentStatus], int]:
        """Open payments created before `created_before`, per (channel, state); read through
        the partial index of open payments (migration 0005), never the whole table."""
        rows = self._session.execute(
            select(payments.c.channel, payments.c.status, func.count())
            .where(payments.c.status.in_(_OPEN), payments.c.created_at < created_before)
            .group_by(payments.c.channel, payments.c.status)
        )
        return {(channel, PaymentStatus(status)): int(n) for channel, status, n in rows}

    # -- order closures ------------------------------------------------------
    def set_closure(self, order_id: str, state: str, reason: str) -> None:
        stmt = insert(order_closures).values(order_id=order_id, state=state, reason=reason)
        self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=["order_id"], set_={"state": state, "reason": reason, "updated_at": func.now()}
            )
        )

    def clear_closure(self, order_id: str) -> None:
        self._session.execute(delete(order_closures).where(order_closures.c.order_id == order_id))
