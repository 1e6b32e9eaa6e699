"""RunReconciliation: one channel's business day, from the channel's statement to stored discrepancies.

1. channel-gateway downloads the day's statement (DownloadStatement) and hands over its bytes
   (FetchStatement); they are parsed and imported (service_layer.statements: the same bytes
   again are the same import; a different file for the day replaces the current one, with the
   run named as the reason, the old one kept for the audit: a channel's statement of a day
   still running grows, and the channel's latest word is the one to reconcile).
2. The day's internal records and the suspense pool (what earlier days left waiting) leave
   PostgreSQL by COPY into Parquet; the matcher (matching.engine.reconcile) runs in
   RECON_WORK_DIR/<channel>/<day>/; its outcomes are read back by DuckDB (adapters.run_files).
3. One transaction stores what the run found: the discrepancies (bulk, by arrays), their
   audit rows and DiscrepancyFound events (outbox, recon.discrepancies keyed by channel), the
   suspense pool's changes and the run row with its counts.
4. service_layer.resolution then resolves what is safe to resolve automatically.

Running a day again: a discrepancy is identified by its fingerprint, "<type>|<records>"
(ours by kind and id, the channel's by day and trade number, or line when it has none), unique
per channel in the database. A re-run that finds the same discrepancy again does not add it
(it keeps its first run, its status and its history); one it finds no longer (the records
matched since, e.g. the capture caught up) is AUTO_RESOLVED as "not_found_again" with the run
named in the reason. MATCHED and MATCHED_WITH_TOLERANCE are counted, never stored one by one;
SUSPENSE records go to suspense_items, not to discrepancies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

from paykit.db import run_blocking
from paykit.errors import FailedPrecondition, InvalidArgument
from paykit.ids import IdKind, new_id
from paykit.messaging.envelope import OutgoingEvent

from reconciliation.adapters import run_files
from reconciliation.adapters.clients import DownloadedStatement
from reconciliation.adapters.events import discrepancy_found, discrepancy_resolved
from reconciliation.adapters.repository import AuditEntry, DiscrepancyRecord, RunRecord
from reconciliation.matching.engine import SuspensePool, reconcile
from reconciliation.service_layer import reports
from reconciliation.service_layer.statements import import_statement
from reconciliation.service_layer.unit_of_work import ReconciliationUnitOfWork, UowFactory, now_utc
from reconciliation.settings import ReconciliationSettings
from reconciliation.statements import ParsedStatement, StatementError, parse_statement

log = logging.getLogger(__name__)

SYSTEM_ACTOR: Final = "reconciliation"
MAX_CHANNEL_CHARS: Final = 64
# A run still RUNNING after this long died with its process: the day may run again.
RUN_STALE_AFTER: Final = timedelta(hours=1)
# Discrepancies auto-resolved as "not found again" per run; the rest wait for the next run.
MAX_NOT_FOUND_AGAIN: Final = 10_000


class StatementSource(Protocol):
    async def download(self, channel: str, day: date) -> DownloadedStatement: ...


@dataclass(frozen=True)
class Stored:
    """What a run stored, for the resolution that follows it."""

    run_id: str
    channel: str
    day: date
    matched_payments: Path  # Parquet, one column our_id
    counts: dict[str, Any]


@dataclass
class Runner:
    uow_factory: UowFactory
    settings: ReconciliationSettings
    statements: StatementSource
    _locks: dict[tuple[str, date], asyncio.Lock] = field(default_factory=dict)

    def lock(self, channel: str, day: date) -> asyncio.Lock:
        return self._locks.setdefault((channel, day), asyncio.Lock())


def validate(channel: str, business_day: str) -> tuple[str, date]:
    if not channel:
        raise InvalidArgument("channel", "is required")
    if len(channel) > MAX_CHANNEL_CHARS:
        raise InvalidArgument("channel", f"at most {MAX_CHANNEL_CHARS} characters")
    if not business_day:
        raise InvalidArgument("business_day", "is required (yyyy-mm-dd in the channel's time zone)")
    return channel, reports.parse_day(business_day, "business_day")


def new_run_id() -> str:
    # Time-ordered like every id of paykit.ids, which has no kind of its own for a run.
    return "run_" + new_id(IdKind.EVENT).split("_", 1)[1]


async def run_and_store(runner: Runner, channel: str, day: date) -> Stored:
    """Steps 1-3 of the module docstring; a failure marks the run FAILED and is raised."""
    run_id = new_run_id()
    await run_blocking(_start, runner.uow_factory, run_id, channel, day)
    try:
        downloaded = await runner.statements.download(channel, day)
        return await run_blocking(_match_and_store, runner, run_id, channel, day, downloaded)
    except Exception as exc:
        await run_blocking(_fail, runner.uow_factory, run_id, f"{type(exc).__name__}: {exc}"[:2_000])
        raise


def _start(uow_factory: UowFactory, run_id: str, channel: str, day: date) -> None:
    with uow_factory() as uow:
        now = now_utc()
        other = uow.runs.running(channel, day, now - RUN_STALE_AFTER)
        if other is not None:
            raise FailedPrecondition(f"{channel}'s {day.isoformat()} is being reconciled by run {other}")
        uow.runs.start(run_id, channel, day, now)
        uow.commit()


def _fail(uow_factory: UowFactory, run_id: str, error: str) -> None:
    with uow_factory() as uow:
        uow.runs.finish(run_id, "FAILED", now_utc(), uow.runs.counts(run_id), error=error)
        uow.commit()


def _parse(downloaded: DownloadedStatement, channel: str, day: date) -> ParsedStatement:
    try:
        parsed = parse_statement(downloaded.format, downloaded.content, downloaded.filename, channel, day)
    except StatementError as exc:
        raise FailedPrecondition(
            f"{channel}'s statement of {day.isoformat()} does not parse: {exc}"
        ) from None
    if downloaded.sha256 and parsed.sha256 != downloaded.sha256:
        raise FailedPrecondition(
            f"statement {downloaded.statement_id}: sha256 {parsed.sha256[:12]}… of the bytes fetched, "
            f"{downloaded.sha256[:12]}… announced"
        )
    return parsed


def _import(uow_factory: UowFactory, run_id: str, parsed: ParsedStatement) -> str:
    with uow_factory() as uow:
        known = uow.statements.by_sha256(parsed.sha256) is not None
        current = None if known else uow.statements.current(parsed.channel, parsed.business_day)
    reason = f"run {run_id}: the channel's statement of the day changed (sha256 {parsed.sha256[:12]}…)"
    imported = import_statement(uow_factory, parsed, replace=current is not None, reason=reason)
    return imported.file.file_id


@contextmanager
def _duck(files: run_files.RunFiles) -> Iterator[Any]:
    con = run_files.connect(files)
    try:
        yield con
    finally:
        con.close()


def _match_and_store(
    runner: Runner, run_id: str, channel: str, day: date, downloaded: DownloadedStatement
) -> Stored:
    parsed = _parse(downloaded, channel, day)
    file_id = _import(runner.uow_factory, run_id, parsed)
    files = run_files.RunFiles.for_day(runner.settings.work_dir, channel, day)
    with _duck(files) as con:
        with runner.uow_factory() as uow:
            session = uow.runs.session
            internal_n = run_files.export_internal(session, con, files, channel, day)
            pool_statement, pool_internal = run_files.export_pool(session, con, files, channel, day)
        statement = run_files.write_statement(parsed.to_arrow(), files)
        result = reconcile(
            day,
            statement,
            files.input("internal.parquet"),
            files.matcher_dir,
            config=runner.settings.match_config(channel, day),
            pool=SuspensePool(pool_statement, pool_internal),
        )
        outcomes = run_files.Outcomes(con, files, result.outcome_files, file_id)
        matched = outcomes.write_matched_payments(files.input("matched_payments.parquet"))
        counts: dict[str, Any] = {
            "outcomes": result.summary.to_pylist(),
            "statement_lines": result.statement_lines,
            "internal_records": result.internal_records,
            "internal_records_of_day": internal_n,
            "timings_s": result.timings_s,
        }
        with runner.uow_factory() as uow:
            counts |= _store(uow, outcomes, run_id, channel, day)
            uow.runs.finish(run_id, "SUCCEEDED", now_utc(), counts, statement_file_id=file_id)
            uow.commit()
    return Stored(run_id, channel, day, matched, counts)


def _store(
    uow: ReconciliationUnitOfWork, outcomes: run_files.Outcomes, run_id: str, channel: str, day: date
) -> dict[str, int]:
    now = now_utc()
    fingerprints: list[str] = []
    new = 0
    for batch in outcomes.discrepancies():
        fingerprints.extend(batch["fingerprint"])
        found = uow.runs.add_discrepancies(run_id, channel, batch, now)
        new += len(found)
        uow.runs.add_audit(
            [AuditEntry(d.discrepancy_id, now, "found", None, "OPEN", None, SYSTEM_ACTOR, f"run {run_id}")
             for d in found]
        )  # fmt: skip
        uow.publish_many([discrepancy_found(d) for d in found])
    stale = uow.runs.open_not_found_again(run_id, channel, day, fingerprints, MAX_NOT_FOUND_AGAIN)
    for d in stale:
        record_resolution(
            uow,
            d,
            "AUTO_RESOLVED",
            "not_found_again",
            SYSTEM_ACTOR,
            f"run {run_id} did not find it again",
            now,
        )
    for batch in outcomes.new_suspense(day):
        uow.runs.add_suspense(run_id, channel, day, batch, now)
    for batch in outcomes.pool_outcomes():
        uow.runs.update_pool(run_id, day, batch, now)
    return {
        "discrepancies_found": len(fingerprints),
        "discrepancies_new": new,
        "discrepancies_known": len(fingerprints) - new,
        "resolved_not_found_again": len(stale),
    }


def record_resolution(
    uow: ReconciliationUnitOfWork,
    d: DiscrepancyRecord,
    status: str,
    resolution: str,
    actor: str,
    reason: str,
    now: Any,
    idempotency_key: str | None = None,
) -> DiscrepancyRecord | None:
    """OPEN -> status with its audit row and DiscrepancyResolved, in the caller's transaction;
    None when it was not OPEN any more."""
    resolved = uow.runs.resolve(d.discrepancy_id, status, resolution, actor, reason, now)
    if resolved is None:
        return None
    uow.runs.add_audit(
        [
            AuditEntry(
                d.discrepancy_id, now, "resolved", "OPEN", status, resolution, actor, reason, idempotency_key
            )
        ]
    )
    events: list[OutgoingEvent] = [discrepancy_resolved(resolved)]
    uow.publish_many(events)
    return resolved


def report_of(uow_factory: UowFactory, run_id: str) -> RunRecord:
    return reports.report(uow_factory, run_id, "", "")
