"""Storing internal records and reading runs and discrepancies; rows stop here."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from paykit.db.bulk import insert_from_arrays
from paykit.ids import IdKind, new_id
from sqlalchemy import Row, Text, and_, any_, bindparam, case, func, not_, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from reconciliation.adapters.tables import (
    discrepancies,
    discrepancy_audit,
    internal_records,
    recon_runs,
    statement_files,
    statement_lines,
)
from reconciliation.domain import InternalRecord, RecordKind, RecordStatus
from reconciliation.statements import ParsedStatement
from reconciliation.statements.base import COLUMNS as STATEMENT_COLUMNS

# The capture's "latest state wins" order (service_layer.capture.STATUS_RANK), in SQL.
_RECORD_COLUMNS = (
    "channel", "business_day", "kind", "our_id", "reference", "channel_txn_id", "amount_minor",
    "currency", "fee_minor", "status", "occurred_at", "batch_key", "merchant_id", "order_id",
    "source_event_id", "source_event_type", "attributes", "captured_at", "updated_at",
)  # fmt: skip
_REPLACED_ON_UPGRADE = tuple(c for c in _RECORD_COLUMNS if c not in ("kind", "our_id", "captured_at"))


@dataclass(frozen=True)
class RecordRow:
    """An internal record as the capture stores it, with where it came from."""

    record: InternalRecord
    merchant_id: str
    order_id: str
    source_event_id: str
    source_event_type: str
    attributes: Mapping[str, Any]


def _upsert(rank: Mapping[str, int]) -> Any:
    statement = insert_from_arrays(internal_records, _RECORD_COLUMNS)
    stored = case(rank, value=internal_records.c.status, else_=-1)
    incoming = case(rank, value=statement.excluded.status, else_=-1)
    return statement.on_conflict_do_update(
        constraint="internal_records_kind_our_id",
        set_={name: statement.excluded[name] for name in _REPLACED_ON_UPGRADE},
        # Only a state that ranks higher replaces the stored one (equal: the first stays).
        where=incoming > stored,
    )


class InternalRecordRepository:
    def __init__(self, session: Session, rank: Mapping[str, int]) -> None:
        self._session = session
        self._upsert = _upsert(rank)

    def save_latest(self, rows: Sequence[RecordRow], now: datetime) -> None:
        """Insert new records; replace a stored one only by a state of higher rank. The
        caller passes at most one row per (kind, our_id) (PostgreSQL refuses two)."""
        if not rows:
            return
        columns: dict[str, list[Any]] = {name: [] for name in _RECORD_COLUMNS}
        for row in rows:
            r = row.record
            values = {
                "channel": r.channel, "business_day": r.business_day, "kind": r.kind.value,
                "our_id": r.our_id, "reference": r.reference, "channel_txn_id": r.channel_txn_id,
                "amount_minor": r.amount_minor, "currency": r.currency, "fee_minor": r.fee_minor,
                "status": r.status.value, "occurred_at": r.occurred_at, "batch_key": r.batch_key,
                "merchant_id": row.merchant_id, "order_id": row.order_id,
                "source_event_id": row.source_event_id, "source_event_type": row.source_event_type,
                # psycopg2 adapts no dict inside an array: JSON text, cast to jsonb[] by the statement.
                "attributes": json.dumps(dict(row.attributes), sort_keys=True),
                "captured_at": now, "updated_at": now,
            }  # fmt: skip
            for name in _RECORD_COLUMNS:
                columns[name].append(values[name])
        self._session.execute(self._upsert, columns)

    def channels_of(
        self, refund_ids: Collection[str], payment_ids: Collection[str]
    ) -> dict[tuple[str, str], str]:
        """(kind, our_id) -> channel of the stored refunds and payments named."""
        if not refund_ids and not payment_ids:
            return {}
        t = internal_records
        rows = self._session.execute(
            select(t.c.kind, t.c.our_id, t.c.channel).where(
                or_(
                    and_(t.c.kind == "REFUND", t.c.our_id.in_(list(refund_ids))),
                    and_(t.c.kind == "PAYMENT", t.c.our_id.in_(list(payment_ids))),
                )
            )
        )
        return {(row.kind, row.our_id): row.channel for row in rows}

    def by_day(self, channel: str, business_day: date) -> list[InternalRecord]:
        """A channel's records of one business day, in the order they were first captured."""
        t = internal_records
        query = select(t).where(t.c.channel == channel, t.c.business_day == business_day)
        return [_record(row) for row in self._session.execute(query.order_by(t.c.record_id))]


def _record(row: Row[Any]) -> InternalRecord:
    return InternalRecord(
        channel=row.channel,
        business_day=row.business_day,
        kind=RecordKind(row.kind),
        our_id=row.our_id,
        reference=row.reference,
        channel_txn_id=row.channel_txn_id,
        amount_minor=row.amount_minor,
        currency=row.currency,
        fee_minor=row.fee_minor,
        status=RecordStatus(row.status),
        occurred_at=row.occurred_at.astimezone(UTC),
        batch_key=row.batch_key,
    )


@dataclass(frozen=True)
class DiscrepancyFilter:
    channel: str | None = None
    business_day: date | None = None
    type: str | None = None
    status: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class OutcomeCount:
    type: str
    side: str
    currency: str
    records: int
    amount_minor: int


@dataclass(frozen=True)
class RunRecord:
    """A run as stored. `counts` (JSONB) holds {"outcomes": [{type, side, currency, records,
    amount_minor}, ...], "statement_lines": n, "internal_records": n}: the matcher's summary
    (reconciliation.domain SUMMARY_SCHEMA) and the sizes of both inputs."""

    run_id: str
    channel: str
    business_day: date
    status: str
    started_at: datetime
    finished_at: datetime | None
    statement_sha256: str | None
    statement_lines: int
    internal_records: int
    outcomes: tuple[OutcomeCount, ...]
    error: str | None
    discrepancies_by_status: Mapping[str, int]


@dataclass(frozen=True)
class DiscrepancyRecord:
    discrepancy_id: str
    run_id: str
    channel: str
    business_day: date
    type: str
    side: str
    kind: str
    our_id: str | None
    channel_txn_id: str | None
    currency: str
    internal_amount_minor: int | None
    channel_amount_minor: int | None
    internal_fee_minor: int | None
    channel_fee_minor: int | None
    status: str
    resolution: str | None
    actor: str | None
    reason: str | None
    created_at: datetime
    resolved_at: datetime | None


def _outcomes(counts: Mapping[str, Any]) -> tuple[OutcomeCount, ...]:
    return tuple(
        OutcomeCount(o["type"], o["side"], o["currency"], int(o["records"]), int(o["amount_minor"]))
        for o in counts.get("outcomes", [])
    )


def _discrepancy(row: Row[Any]) -> DiscrepancyRecord:
    return DiscrepancyRecord(**{name: getattr(row, name) for name in DiscrepancyRecord.__dataclass_fields__})


class ReportRepository:
    """Runs, their statements and discrepancies, read for reports."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def run(self, run_id: str) -> RunRecord | None:
        return self._run(self._runs().where(recon_runs.c.run_id == run_id))

    def latest_run(self, channel: str, business_day: date) -> RunRecord | None:
        query = (
            self._runs()
            .where(recon_runs.c.channel == channel, recon_runs.c.business_day == business_day)
            .order_by(recon_runs.c.started_at.desc(), recon_runs.c.run_id.desc())
            .limit(1)
        )
        return self._run(query)

    @staticmethod
    def _runs() -> Any:
        joined = recon_runs.outerjoin(
            statement_files, statement_files.c.file_id == recon_runs.c.statement_file_id
        )
        return select(recon_runs, statement_files.c.sha256).select_from(joined)

    def _run(self, query: Any) -> RunRecord | None:
        row = self._session.execute(query).first()
        if row is None:
            return None
        by_status = self._session.execute(
            select(discrepancies.c.status, func.count())
            .where(discrepancies.c.run_id == row.run_id)
            .group_by(discrepancies.c.status)
        )
        counts = row.counts or {}
        return RunRecord(
            run_id=row.run_id,
            channel=row.channel,
            business_day=row.business_day,
            status=row.status,
            started_at=row.started_at,
            finished_at=row.finished_at,
            statement_sha256=row.sha256,
            statement_lines=int(counts.get("statement_lines", 0)),
            internal_records=int(counts.get("internal_records", 0)),
            outcomes=_outcomes(counts),
            error=row.error,
            discrepancies_by_status={status: int(n) for status, n in by_status},
        )

    def discrepancies(self, where: DiscrepancyFilter, after: str, limit: int) -> list[DiscrepancyRecord]:
        """A page in discrepancy_id order (ids sort by time), after the given id."""
        t = discrepancies
        query = select(t).order_by(t.c.discrepancy_id).limit(limit)
        for column, value in (
            (t.c.channel, where.channel),
            (t.c.business_day, where.business_day),
            (t.c.type, where.type),
            (t.c.status, where.status),
            (t.c.run_id, where.run_id),
        ):
            if value is not None:
                query = query.where(column == value)
        if after:
            query = query.where(t.c.discrepancy_id > after)
        return [_discrepancy(row) for row in self._session.execute(query)]


@dataclass(frozen=True)
class StatementFile:
    file_id: str
    channel: str
    business_day: date
    format: str
    filename: str
    sha256: str
    account: str
    line_count: int
    imported_at: datetime
    replaced_at: datetime | None
    replaced_by: str | None


def _statement_file(row: Row[Any]) -> StatementFile:
    return StatementFile(**{name: getattr(row, name) for name in StatementFile.__dataclass_fields__})


class StatementRepository:
    """Imported statement files and their lines (reconciliation.statements.ParsedStatement)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._add_lines = insert_from_arrays(
            statement_lines, STATEMENT_COLUMNS, {"file_id": bindparam("file_id")}
        )

    def by_sha256(self, sha256: str) -> StatementFile | None:
        row = self._session.execute(select(statement_files).where(statement_files.c.sha256 == sha256)).first()
        return None if row is None else _statement_file(row)

    def current(self, channel: str, business_day: date) -> StatementFile | None:
        """The day's statement not replaced, locked until the transaction ends."""
        t = statement_files
        query = (
            select(t)
            .where(t.c.channel == channel, t.c.business_day == business_day, t.c.replaced_at.is_(None))
            .with_for_update()
        )
        row = self._session.execute(query).first()
        return None if row is None else _statement_file(row)

    def mark_replaced(self, file_id: str, by_file_id: str, reason: str, now: datetime) -> None:
        t = statement_files
        self._session.execute(
            update(t)
            .where(t.c.file_id == file_id)
            .values(replaced_at=now, replaced_by=by_file_id, replace_reason=reason)
        )

    def add(self, file_id: str, parsed: ParsedStatement, now: datetime) -> None:
        self._session.execute(
            statement_files.insert().values(
                file_id=file_id,
                channel=parsed.channel,
                business_day=parsed.business_day,
                format=parsed.format,
                filename=parsed.filename,
                sha256=parsed.sha256,
                account=parsed.account,
                line_count=parsed.line_count,
                imported_at=now,
            )
        )
        if parsed.line_count:
            self._session.execute(self._add_lines, {"file_id": file_id, **parsed.columns})

    def line_count(self, file_id: str) -> int:
        query = select(func.count()).select_from(statement_lines).where(statement_lines.c.file_id == file_id)
        return int(self._session.execute(query).scalar_one())


# -- runs, the discrepancies they find, their resolution -----------------------------------

_INSERT_DISCREPANCIES = text("""
    INSERT INTO discrepancies (discrepancy_id, run_id, channel, business_day, type, side, kind, our_id,
        channel_txn_id, internal_record_ids, statement_file_id, statement_line_nos, currency,
        internal_amount_minor, channel_amount_minor, internal_fee_minor, channel_fee_minor, status,
        created_at, updated_at, fingerprint)
    SELECT u.discrepancy_id, :run_id, :channel, u.business_day, u.type, u.side, u.kind, u.our_id,
        u.channel_txn_id, CAST(u.internal_record_ids AS bigint[]), u.statement_file_id,
        CAST(u.statement_line_nos AS bigint[]), u.currency, u.internal_amount_minor,
        u.channel_amount_minor, u.internal_fee_minor, u.channel_fee_minor, 'OPEN', :now, :now, u.fingerprint
    FROM unnest(CAST(:discrepancy_id AS text[]), CAST(:business_day AS date[]), CAST(:type AS text[]),
        CAST(:side AS text[]), CAST(:kind AS text[]), CAST(:our_id AS text[]),
        CAST(:channel_txn_id AS text[]), CAST(:internal_record_ids AS text[]),
        CAST(:statement_file_id AS text[]), CAST(:statement_line_nos AS text[]), CAST(:currency AS text[]),
        CAST(:internal_amount_minor AS bigint[]), CAST(:channel_amount_minor AS bigint[]),
        CAST(:internal_fee_minor AS bigint[]), CAST(:channel_fee_minor AS bigint[]),
        CAST(:fingerprint AS text[]))
        AS u(discrepancy_id, business_day, type, side, kind, our_id, channel_txn_id, internal_record_ids,
             statement_file_id, statement_line_nos, currency, internal_amount_minor, channel_amount_minor,
             internal_fee_minor, channel_fee_minor, fingerprint)
    ON CONFLICT (channel, fingerprint) WHERE fingerprint IS NOT NULL DO NOTHING
    RETURNING *""")

_INSERT_SUSPENSE = text("""
    INSERT INTO suspense_items (side, channel, kind, our_id, channel_txn_id, internal_record_id,
        statement_file_id, statement_line_no, amount_minor, currency, first_seen_day, last_run_day,
        attempts, status, first_run_id, created_at, updated_at)
    SELECT u.side, :channel, u.kind, u.our_id, u.channel_txn_id, u.internal_record_id, u.statement_file_id,
        u.statement_line_no, u.amount_minor, u.currency, :day, :day, 1, 'WAITING', :run_id, :now, :now
    FROM unnest(CAST(:side AS text[]), CAST(:kind AS text[]), CAST(:our_id AS text[]),
        CAST(:channel_txn_id AS text[]), CAST(:internal_record_id AS bigint[]),
        CAST(:statement_file_id AS text[]), CAST(:statement_line_no AS bigint[]),
        CAST(:amount_minor AS bigint[]), CAST(:currency AS text[]))
        AS u(side, kind, our_id, channel_txn_id, internal_record_id, statement_file_id, statement_line_no,
             amount_minor, currency)
    ON CONFLICT DO NOTHING""")

# A pool item after a run of `day`: still waiting (one more day counted once per day), matched,
# or expired into the discrepancy its record is part of now.
_UPDATE_POOL = text("""
    UPDATE suspense_items s SET
        status = CASE WHEN u.type = 'SUSPENSE' THEN 'WAITING'
                      WHEN u.type IN ('MATCHED', 'MATCHED_WITH_TOLERANCE') THEN 'MATCHED'
                      ELSE 'EXPIRED' END,
        attempts = s.attempts + CASE WHEN s.last_run_day < :day THEN 1 ELSE 0 END,
        last_run_day = greatest(s.last_run_day, :day),
        closed_run_id = CASE WHEN u.type = 'SUSPENSE' THEN NULL ELSE :run_id END,
        discrepancy_id = (SELECT d.discrepancy_id FROM discrepancies d
                          WHERE d.channel = s.channel AND d.fingerprint = u.fingerprint),
        updated_at = :now
    FROM unnest(CAST(:item_id AS bigint[]), CAST(:type AS text[]), CAST(:fingerprint AS text[]))
        AS u(item_id, type, fingerprint)
    WHERE s.item_id = u.item_id""")


@dataclass(frozen=True)
class AuditEntry:
    discrepancy_id: str
    at: datetime
    action: str
    from_status: str | None
    to_status: str
    resolution: str | None
    actor: str
    reason: str
    idempotency_key: str | None = None


_AUDIT_COLUMNS = tuple(AuditEntry.__dataclass_fields__)


class RunRepository:
    """Runs, the discrepancies they record and their audit trail, the suspense pool."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._add_audit = insert_from_arrays(discrepancy_audit, _AUDIT_COLUMNS)

    @property
    def session(self) -> Session:
        return self._session

    def running(self, channel: str, business_day: date, since: datetime) -> str | None:
        """A run of the day started after `since` and not finished (another caller's)."""
        t = recon_runs
        return self._session.execute(
            select(t.c.run_id).where(
                t.c.channel == channel,
                t.c.business_day == business_day,
                t.c.status == "RUNNING",
                t.c.started_at > since,
            )
        ).scalar()

    def start(self, run_id: str, channel: str, business_day: date, now: datetime) -> None:
        self._session.execute(
            recon_runs.insert().values(
                run_id=run_id, channel=channel, business_day=business_day, status="RUNNING",
                started_at=now, counts={},
            )
        )  # fmt: skip

    def finish(
        self, run_id: str, status: str, now: datetime, counts: Mapping[str, Any], *,
        statement_file_id: str | None = None, error: str | None = None,
    ) -> None:  # fmt: skip
        values: dict[str, Any] = {
            "status": status,
            "finished_at": now,
            "counts": dict(counts),
            "error": error,
        }
        if statement_file_id is not None:
            values["statement_file_id"] = statement_file_id
        self._session.execute(update(recon_runs).where(recon_runs.c.run_id == run_id).values(**values))

    def set_counts(self, run_id: str, counts: Mapping[str, Any]) -> None:
        self._session.execute(
            update(recon_runs).where(recon_runs.c.run_id == run_id).values(counts=dict(counts))
        )

    def counts(self, run_id: str) -> dict[str, Any]:
        value = self._session.execute(
            select(recon_runs.c.counts).where(recon_runs.c.run_id == run_id)
        ).scalar_one()
        return dict(value or {})

    def add_discrepancies(
        self, run_id: str, channel: str, columns: Mapping[str, list[Any]], now: datetime
    ) -> list[DiscrepancyRecord]:
        """Insert a batch; a discrepancy already known (same fingerprint) is skipped. Returns the new."""
        n = len(columns["fingerprint"])
        ids = [new_id(IdKind.DISCREPANCY) for _ in range(n)]
        params = {**columns, "discrepancy_id": ids, "run_id": run_id, "channel": channel, "now": now}
        return [_discrepancy(row) for row in self._session.execute(_INSERT_DISCREPANCIES, params)]

    def add_audit(self, entries: Sequence[AuditEntry]) -> None:
        if entries:
            self._session.execute(
                self._add_audit, {name: [getattr(e, name) for e in entries] for name in _AUDIT_COLUMNS}
            )

    def audit_of(self, discrepancy_id: str) -> list[AuditEntry]:
        t = discrepancy_audit
        rows = self._session.execute(
            select(t).where(t.c.discrepancy_id == discrepancy_id).order_by(t.c.audit_id)
        )
        return [AuditEntry(**{name: getattr(row, name) for name in _AUDIT_COLUMNS}) for row in rows]

    def open_not_found_again(
        self, run_id: str, channel: str, business_day: date, fingerprints: Sequence[str], limit: int
    ) -> list[DiscrepancyRecord]:
        """OPEN discrepancies of earlier runs of the day that this run did not find again."""
        t = discrepancies
        earlier = select(recon_runs.c.run_id).where(
            recon_runs.c.channel == channel,
            recon_runs.c.business_day == business_day,
            recon_runs.c.run_id != run_id,
        )
        query = (
            select(t)
            .where(t.c.status == "OPEN", t.c.run_id.in_(earlier))
            .where(
                or_(
                    t.c.fingerprint.is_(None),
                    not_(t.c.fingerprint == any_(bindparam("seen", list(fingerprints), type_=ARRAY(Text)))),
                )
            )
            .order_by(t.c.discrepancy_id)
            .limit(limit)
        )
        return [_discrepancy(row) for row in self._session.execute(query)]

    def open_of_day(
        self, channel: str, business_day: date, types: Collection[str], limit: int
    ) -> list[DiscrepancyRecord]:
        """OPEN discrepancies of the given types found by any run of the channel's day."""
        t = discrepancies
        runs = select(recon_runs.c.run_id).where(
            recon_runs.c.channel == channel, recon_runs.c.business_day == business_day
        )
        query = (
            select(t)
            .where(t.c.status == "OPEN", t.c.run_id.in_(runs), t.c.type.in_(list(types)))
            .order_by(t.c.discrepancy_id)
            .limit(limit)
        )
        return [_discrepancy(row) for row in self._session.execute(query)]

    def get_for_update(self, discrepancy_id: str) -> DiscrepancyRecord | None:
        t = discrepancies
        row = self._session.execute(
            select(t).where(t.c.discrepancy_id == discrepancy_id).with_for_update()
        ).first()
        return None if row is None else _discrepancy(row)

    def resolve(
        self, discrepancy_id: str, status: str, resolution: str, actor: str, reason: str, now: datetime
    ) -> DiscrepancyRecord | None:
        """OPEN -> status; None when it is not OPEN any more (someone resolved it first)."""
        t = discrepancies
        row = self._session.execute(
            update(t)
            .where(t.c.discrepancy_id == discrepancy_id, t.c.status == "OPEN")
            .values(status=status, resolution=resolution, actor=actor, reason=reason,
                    resolved_at=now, updated_at=now)
            .returning(t)
        ).first()  # fmt: skip
        return None if row is None else _discrepancy(row)

    def add_suspense(
        self, run_id: str, channel: str, day: date, columns: Mapping[str, list[Any]], now: datetime
    ) -> None:
        self._session.execute(
            _INSERT_SUSPENSE, {**columns, "run_id": run_id, "channel": channel, "day": day, "now": now}
        )

    def update_pool(self, run_id: str, day: date, columns: Mapping[str, list[Any]], now: datetime) -> None:
        self._session.execute(_UPDATE_POOL, {**columns, "run_id": run_id, "day": day, "now": now})

    def count_open(self) -> dict[tuple[str, str], int]:
        t = discrepancies
        rows = self._session.execute(
            select(t.c.channel, t.c.type, func.count())
            .where(t.c.status == "OPEN")
            .group_by(t.c.channel, t.c.type)
        )
        return {(channel, type_): int(n) for channel, type_, n in rows}
