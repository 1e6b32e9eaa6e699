"""Importing a parsed statement file: once per file, one current file per channel and day.

The same bytes imported again (same sha256) are the same import: the first one is returned and
nothing changes. A different file for a channel's day that already has one is refused unless
the caller replaces it explicitly, with a reason: the old file is then marked replaced (kept,
with its lines, for the audit) and the new one stored, in one transaction. The database
enforces both rules too (sha256 unique; one unreplaced file per channel and day), so two
concurrent imports cannot both win: the loser is re-run once and sees the winner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from paykit.errors import FailedPrecondition, InvalidArgument
from paykit.ids import IdKind, new_id
from sqlalchemy.exc import IntegrityError

from reconciliation.adapters.repository import StatementFile
from reconciliation.service_layer.unit_of_work import UowFactory
from reconciliation.statements import ParsedStatement

IMPORT_ATTEMPTS: Final = 2  # the second one sees what a concurrent import committed
MAX_REASON_CHARS: Final = 500


@dataclass(frozen=True)
class Imported:
    file: StatementFile
    created: bool  # False: these bytes were imported before
    replaced_file_id: str | None = None


def import_statement(
    uow_factory: UowFactory, parsed: ParsedStatement, *, replace: bool = False, reason: str = ""
) -> Imported:
    if replace and not reason.strip():
        raise InvalidArgument("reason", "replacing a day's statement needs a reason")
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidArgument("reason", f"is longer than {MAX_REASON_CHARS} characters")
    for attempt in range(IMPORT_ATTEMPTS):
        try:
            return _import(uow_factory, parsed, replace, reason.strip())
        except IntegrityError:
            if attempt + 1 == IMPORT_ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # the loop returns or raises


def _import(uow_factory: UowFactory, parsed: ParsedStatement, replace: bool, reason: str) -> Imported:
    with uow_factory() as uow:
        same = uow.statements.by_sha256(parsed.sha256)
        if same is not None:
            if (same.channel, same.business_day) != (parsed.channel, parsed.business_day):
                raise FailedPrecondition(
                    f"{parsed.filename} (sha256 {parsed.sha256[:12]}…) was imported as {same.channel}'s "
                    f"statement of {same.business_day.isoformat()}, not {parsed.channel}'s of "
                    f"{parsed.business_day.isoformat()}"
                )
            return Imported(same, created=False)
        current = uow.statements.current(parsed.channel, parsed.business_day)
        file_id = new_id(IdKind.STATEMENT)
        now = datetime.now(UTC)
        if current is not None:
            if not replace:
                raise FailedPrecondition(
                    f"{parsed.channel}'s statement of {parsed.business_day.isoformat()} is already "
                    f"{current.filename} (sha256 {current.sha256[:12]}…, {current.line_count} lines); "
                    "a different file replaces it only explicitly, with a reason"
                )
            uow.statements.mark_replaced(current.file_id, file_id, reason, now)
        uow.statements.add(file_id, parsed, now)
        stored = uow.statements.by_sha256(parsed.sha256)
        uow.commit()
    if stored is None:
        raise AssertionError(f"statement {file_id} not found right after it was stored")
    return Imported(stored, created=True, replaced_file_id=current.file_id if current else None)
