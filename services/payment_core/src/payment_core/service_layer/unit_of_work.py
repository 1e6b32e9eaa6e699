from __future__ import annotations

from typing import Protocol

from paykit.messaging.envelope import OutgoingEvent
from paykit.messaging.unit_of_work import JoinedTx, OutboxUnitOfWork
from sqlalchemy.orm import Session

from payment_core.adapters.health_repository import HealthRepository
from payment_core.adapters.refund_repository import RefundRepository
from payment_core.adapters.repository import PaymentRepository


class PaymentTx(Protocol):
    payments: PaymentRepository
    refunds: RefundRepository
    health: HealthRepository

    @property
    def session(self) -> Session: ...

    def publish(self, event: OutgoingEvent) -> None: ...


def _attach(tx: PaymentUnitOfWork | SessionTx, session: Session) -> None:
    tx.payments = PaymentRepository(session)
    tx.refunds = RefundRepository(session)
    tx.health = HealthRepository(session)


class PaymentUnitOfWork(OutboxUnitOfWork):
    payments: PaymentRepository
    refunds: RefundRepository
    health: HealthRepository

    def attach(self, session: Session) -> None:
        _attach(self, session)


class SessionTx(JoinedTx):
    payments: PaymentRepository
    refunds: RefundRepository
    health: HealthRepository

    def attach(self, session: Session) -> None:
        _attach(self, session)
