from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from paykit.messaging.envelope import OutgoingEvent
from paykit.messaging.unit_of_work import JoinedTx, OutboxUnitOfWork
from sqlalchemy.orm import Session

from accounting.adapters.repository import LedgerRepository, SettlementRepository


class LedgerTx(Protocol):
    ledger: LedgerRepository
    settlements: SettlementRepository

    def publish(self, event: OutgoingEvent) -> None: ...

    def publish_many(self, events: Sequence[OutgoingEvent]) -> None: ...


def _attach(tx: LedgerUnitOfWork | SessionTx, session: Session) -> None:
    tx.ledger = LedgerRepository(session)
    tx.settlements = SettlementRepository(session)


class LedgerUnitOfWork(OutboxUnitOfWork):
    ledger: LedgerRepository
    settlements: SettlementRepository

    def attach(self, session: Session) -> None:
        _attach(self, session)


class SessionTx(JoinedTx):
    ledger: LedgerRepository
    settlements: SettlementRepository

    def attach(self, session: Session) -> None:
        _attach(self, session)


UowFactory = Callable[[], LedgerUnitOfWork]
