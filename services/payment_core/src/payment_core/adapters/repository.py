"""Loading and saving payments, their state changes and flags."""

from __future__ import annotations

from typing import Any

from paykit.money import Money
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from payment_core.adapters.tables import payment_flags, payment_state_changes, payments
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
                "channel_trade_no": payment.channel_trade_no,
                "pay_url": payment.pay_url,
                "failure_code": payment.failure_code,
                "succeeded_at": payment.succeeded_at,
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
