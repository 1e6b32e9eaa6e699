from __future__ import annotations

from typing import Protocol

from paykit.messaging.envelope import OutgoingEvent
from paykit.messaging.unit_of_work import JoinedTx, OutboxUnitOfWork
from sqlalchemy.orm import Session

from payment_core.adapters.repository import PaymentRepository


class PaymentTx(Protocol):
    payments: PaymentRepository

    def publish(self, event: OutgoingEvent) -> None: ...


class PaymentUnitOfWork(OutboxUnitOfWork):
    payments: PaymentRepository

    def attach(self, session: Session) -> None:
        self.payments = PaymentRepository(session)


class SessionTx(JoinedTx):
    payments: PaymentRepository

    def attach(self, session: Session) -> None:
        self.payments = PaymentRepository(session)
