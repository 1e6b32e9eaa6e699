"""Operator corrections: adjustments (e.g. a reconciliation difference to suspense) and reversals.

Both are journal entries like any other: balanced, immutable, with the
operator's reason and name recorded, posted at most once per request key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from paykit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from paykit.ids import IdKind, new_id
from paykit.money import Money

from accounting.domain import posting_rules as rules
from accounting.domain.accounts import Side, parse_account_id
from accounting.domain.entries import EntryKind, JournalEntry, Line
from accounting.service_layer.posting import post
from accounting.service_layer.unit_of_work import UowFactory

TEXT_MAX_CHARS = 256


@dataclass(frozen=True)
class RequestedLine:
    account_id: str
    side: Side | None
    amount: Money


def _operator(key: str, reason: str, actor: str) -> None:
    if not key or len(key) > 128:
        raise InvalidArgument("idempotency_key", "is required, at most 128 characters")
    if not reason or len(reason) > TEXT_MAX_CHARS:
        raise InvalidArgument("reason", f"is required (why), at most {TEXT_MAX_CHARS} characters")
    if not actor or len(actor) > TEXT_MAX_CHARS:
        raise InvalidArgument("actor", f"is required (who), at most {TEXT_MAX_CHARS} characters")


def _same_lines(a: JournalEntry, b: JournalEntry) -> bool:
    def key(entry: JournalEntry) -> list[tuple[str, str, int, str]]:
        return sorted(
            (line.account.account_id, line.side.value, line.amount.minor, line.amount.currency)
            for line in entry.lines
        )

    return key(a) == key(b)


def post_adjustment(
    uow_factory: UowFactory,
    key: str,
    requested: Sequence[RequestedLine],
    reason: str,
    actor: str,
    reference: str,
) -> JournalEntry:
    _operator(key, reason, actor)
    lines = []
    for index, line in enumerate(requested):
        account = parse_account_id(line.account_id, f"lines[{index}].account_id")
        if line.side is None:
            raise InvalidArgument(f"lines[{index}].side", "must be DEBIT or CREDIT")
        lines.append(Line(account, line.side, line.amount))
    entry = JournalEntry(
        new_id(IdKind.JOURNAL_ENTRY),
        f"adj:{key}",
        EntryKind.ADJUSTMENT,
        reference or key,
        tuple(lines),
        datetime.now(UTC),
        description="operator adjustment",
        actor=actor,
        reason=reason,
    )
    with uow_factory() as uow:
        existing = uow.ledger.entry(event_id=entry.event_id)
        if existing is not None:
            if not _same_lines(existing, entry):
                raise AlreadyExists(
                    f"idempotency_key {key!r} was used for adjustment {existing.entry_id} with other lines",
                    field="idempotency_key",
                )
            return existing
        post(uow, [entry])
        uow.commit()
    return entry


def reverse(uow_factory: UowFactory, key: str, entry_id: str, reason: str, actor: str) -> JournalEntry:
    _operator(key, reason, actor)
    if not entry_id:
        raise InvalidArgument("entry_id", "is required")
    with uow_factory() as uow:
        existing = uow.ledger.entry(event_id=f"rev:{key}")
        if existing is not None:
            if existing.reverses_entry_id != entry_id:
                raise AlreadyExists(
                    f"idempotency_key {key!r} was used to reverse entry {existing.reverses_entry_id}",
                    field="idempotency_key",
                )
            return existing
        original = uow.ledger.entry(entry_id=entry_id)
        if original is None:
            raise NotFound(f"journal entry {entry_id} not found")
        already = uow.ledger.reversal_of(entry_id)
        if already is not None:
            raise FailedPrecondition(f"journal entry {entry_id} was already reversed by {already}")
        reversal = rules.reversal(
            original, key, new_id(IdKind.JOURNAL_ENTRY), datetime.now(UTC), reason, actor
        )
        post(uow, [reversal])
        uow.commit()
    return reversal
