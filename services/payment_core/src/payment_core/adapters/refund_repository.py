"""Loading and saving refunds and their state changes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from paykit.money import Money
from paykit.telemetry import inject_carrier
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from payment_core.adapters.tables import refund_state_changes, refunds
from payment_core.domain.refund import OPEN_STATES, Refund, RefundChange, RefundStatus

_ADD = (
    insert(refunds).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(refunds.c.refund_id)
)
_BY_ID = select(refunds).where(refunds.c.refund_id == bindparam("b_refund_id"))
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()
_SAVE = update(refunds).where(refunds.c.refund_id == bindparam("b_refund_id")).values(updated_at=func.now())
_OPEN = [s.value for s in OPEN_STATES]


def _to_domain(row: Any) -> Refund:
    return Refund(
        refund_id=row.refund_id,
        idempotency_key=row.idempotency_key,
        payment_id=row.payment_id,
        order_id=row.order_id,
        merchant_id=row.merchant_id,
        amount=Money(row.amount_minor, row.currency),
        reason=row.reason,
        channel=row.channel,
        status=RefundStatus(row.status),
        created_at=row.created_at,
        automatic=row.automatic,
        channel_refund_no=row.channel_refund_no,
        failure_code=row.failure_code,
        failure_message=row.failure_message,
        succeeded_at=row.succeeded_at,
        next_attempt_at=row.next_attempt_at,
        attempts=row.attempts,
    )


class RefundRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add_if_absent(self, refund: Refund) -> bool:
        inserted = self._session.execute(
            _ADD,
            {
                "refund_id": refund.refund_id,
                "idempotency_key": refund.idempotency_key,
                "payment_id": refund.payment_id,
                "order_id": refund.order_id,
                "merchant_id": refund.merchant_id,
                "amount_minor": refund.amount.minor,
                "currency": refund.amount.currency,
                "reason": refund.reason,
                "channel": refund.channel,
                "status": refund.status.value,
                "automatic": refund.automatic,
                "created_at": refund.created_at,
                "next_attempt_at": refund.next_attempt_at,
                "trace_headers": inject_carrier(),
            },
        ).first()
        return inserted is not None

    def get(self, refund_id: str, *, for_update: bool = False) -> Refund | None:
        row = self._session.execute(
            _BY_ID_FOR_UPDATE if for_update else _BY_ID, {"b_refund_id": refund_id}
        ).first()
        return _to_domain(row) if row else None

    def get_by_idempotency_key(self, key: str) -> Refund | None:
        row = self._session.execute(select(refunds).where(refunds.c.idempotency_key == key)).first()
        return _to_domain(row) if row else None

    def save(self, refund: Refund, changes: list[RefundChange] | None = None) -> None:
        self._session.execute(
            _SAVE,
            {
                "b_refund_id": refund.refund_id,
                "status": refund.status.value,
                "channel_refund_no": refund.channel_refund_no,
                "failure_code": refund.failure_code,
                "failure_message": refund.failure_message,
                "succeeded_at": refund.succeeded_at,
                "next_attempt_at": refund.next_attempt_at,
                "attempts": refund.attempts,
            },
        )
        for change in changes or ():
            self.record_change(change)

    def record_change(self, change: RefundChange) -> None:
        self._session.execute(
            refund_state_changes.insert().values(
                refund_id=change.refund_id,
                from_status=change.from_status.value,
                to_status=change.to_status.value,
                reason=change.reason,
                at=change.at,
            )
        )

    def history(self, refund_id: str) -> list[RefundChange]:
        rows = self._session.execute(
            select(refund_state_changes)
            .where(refund_state_changes.c.refund_id == refund_id)
            .order_by(refund_state_changes.c.id)
        )
        return [
            RefundChange(
                row.refund_id, RefundStatus(row.from_status), RefundStatus(row.to_status), row.reason, row.at
            )
            for row in rows
        ]

    def list_by(self, *, payment_id: str = "", order_id: str = "") -> list[Refund]:
        column = refunds.c.payment_id if payment_id else refunds.c.order_id
        rows = self._session.execute(
            select(refunds).where(column == (payment_id or order_id)).order_by(refunds.c.created_at)
        )
        return [_to_domain(row) for row in rows]

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[tuple[Refund, dict[str, str]]]:
        """Open refunds due for a submit or a query, leased like payments' queries."""
        rows = self._session.execute(
            select(refunds)
            .where(refunds.c.next_attempt_at <= now, refunds.c.status.in_(_OPEN))
            .order_by(refunds.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if rows:
            self._session.execute(
                update(refunds)
                .where(refunds.c.refund_id.in_([r.refund_id for r in rows]))
                .values(next_attempt_at=now + lease)
            )
        return [(_to_domain(row), dict(row.trace_headers)) for row in rows]
