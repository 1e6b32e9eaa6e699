from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from paykit.messaging.unit_of_work import JoinedTx, OutboxUnitOfWork
from sqlalchemy.orm import Session

from reconciliation.adapters.repository import (
    InternalRecordRepository,
    ReportRepository,
    RunRepository,
    StatementRepository,
)
from reconciliation.service_layer.record_state import STATUS_RANK


def _attach(tx: ReconciliationUnitOfWork | SessionTx, session: Session) -> None:
    tx.records = InternalRecordRepository(session, STATUS_RANK)
    tx.reports = ReportRepository(session)
    tx.statements = StatementRepository(session)
    tx.runs = RunRepository(session)


class ReconciliationUnitOfWork(OutboxUnitOfWork):
    records: InternalRecordRepository
    reports: ReportRepository
    statements: StatementRepository
    runs: RunRepository

    def attach(self, session: Session) -> None:
        _attach(self, session)


class SessionTx(JoinedTx):
    """The same repositories inside a transaction someone else owns (the capture's batch)."""

    records: InternalRecordRepository
    reports: ReportRepository
    statements: StatementRepository
    runs: RunRepository

    def attach(self, session: Session) -> None:
        _attach(self, session)


UowFactory = Callable[[], ReconciliationUnitOfWork]


def now_utc() -> datetime:
    return datetime.now(UTC)
