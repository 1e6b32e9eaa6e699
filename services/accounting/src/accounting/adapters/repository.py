"""Storing the ledger: accounts and balances, entries and lines, captures, failures."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from paykit.db.bulk import insert_from_arrays, rows_from_arrays
from paykit.money import Money
from sqlalchemy import bindparam, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from accounting.adapters.tables import (
    accounts,
    captures,
    deferred_refunds,
    journal_entries,
    journal_lines,
    posting_failures,
    settlements,
)
from accounting.domain.accounts import Account, Side, parse_account_id
from accounting.domain.entries import EntryKind, JournalEntry, Line
from accounting.domain.posting_rules import CaptureRecord, Refunded
from accounting.domain.settlement import Settlement, SettlementStatus

# Built once and executed with parameters.
_ADD_ACCOUNT = insert(accounts).on_conflict_do_nothing(index_elements=["account_id"])
_ENTRY_COLUMNS = (
    "entry_id",
    "event_id",
    "kind",
    "reference",
    "description",
    "actor",
    "reason",
    "reverses_entry_id",
    "created_at",
)
_ADD_ENTRIES = (
    insert(journal_entries)
    .from_select(_ENTRY_COLUMNS, rows_from_arrays(journal_entries, _ENTRY_COLUMNS))
    .on_conflict_do_nothing(index_elements=["event_id"])
    .returning(journal_entries.c.entry_id)
)
_LINE_COLUMNS = ("entry_id", "account_id", "side", "amount_minor", "currency")
_ADD_LINES = insert_from_arrays(journal_lines, _LINE_COLUMNS)
# Moves the balance unless that would take a must-not-go-negative account below zero: no
# row back means refused. Checked in the WHERE clause, not left to the accounts_not_negative
# constraint, whose violation would abort the whole transaction as an IntegrityError instead
# of a refusal the caller can handle (the consumer's savepoint, a PostingRefused).
_MOVE_BALANCE = (
    update(accounts)
    .where(
        accounts.c.account_id == bindparam("b_account_id"),
        or_(~accounts.c.must_not_go_negative, accounts.c.balance_minor + bindparam("b_delta") >= 0),
    )
    .values(balance_minor=accounts.c.balance_minor + bindparam("b_delta"))
    .returning(accounts.c.balance_minor)
)
_BALANCE = select(accounts.c.balance_minor).where(accounts.c.account_id == bindparam("b_account_id"))
_CAPTURE = select(captures).where(captures.c.payment_id == bindparam("b_payment_id"))
_CAPTURE_FOR_UPDATE = _CAPTURE.with_for_update()
_REFUND_POSTED = select(journal_entries.c.entry_id).where(
    journal_entries.c.reference == bindparam("b_refund_id"),
    journal_entries.c.kind.in_([EntryKind.REFUND.value, EntryKind.DUPLICATE_REFUND.value]),
)


class BalanceWouldGoNegative(Exception):
    def __init__(self, account_id: str, balance_minor: int) -> None:
        super().__init__(
            f"{account_id} must not go negative; the posting would leave {balance_minor} minor units"
        )
        self.account_id = account_id


@dataclass(frozen=True)
class StoredAccount:
    account: Account
    balance: Money


def _capture(row: Any) -> CaptureRecord:
    return CaptureRecord(
        payment_id=row.payment_id,
        merchant_id=row.merchant_id,
        channel=row.channel,
        gross=Money(row.gross_minor, row.currency),
        net=Money(row.net_minor, row.currency),
        unreleased=Money(row.unreleased_minor, row.currency),
        duplicate=row.duplicate,
        refunded=Money(row.refunded_minor, row.currency),
    )


class LedgerRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    # -- posting -------------------------------------------------------------------
    def ensure_accounts(self, wanted: Iterable[Account]) -> None:
        unique = {a.account_id: a for a in wanted}
        if not unique:
            return
        self._session.execute(
            _ADD_ACCOUNT,
            [
                {
                    "account_id": a.account_id,
                    "type": a.type.value,
                    "currency": a.currency,
                    "owner": a.owner,
                    "normal_side": a.normal_side.value,
                    "must_not_go_negative": a.must_not_go_negative,
                }
                for _, a in sorted(unique.items())
            ],
        )

    def insert_entries(self, entries: Sequence[JournalEntry]) -> set[str]:
        """Insert the entries whose event was not posted before; returns their ids."""
        if not entries:
            return set()
        rows = self._session.execute(
            _ADD_ENTRIES,
            {
                "entry_id": [e.entry_id for e in entries],
                "event_id": [e.event_id for e in entries],
                "kind": [e.kind.value for e in entries],
                "reference": [e.reference for e in entries],
                "description": [e.description for e in entries],
                "actor": [e.actor for e in entries],
                "reason": [e.reason for e in entries],
                "reverses_entry_id": [e.reverses_entry_id or None for e in entries],
                "created_at": [e.created_at for e in entries],
            },
        )
        return {row.entry_id for row in rows}

    def move_balances(self, deltas: Mapping[str, int]) -> None:
        """Add each delta to its account, in account-id order so concurrent postings never deadlock."""
        for account_id in sorted(deltas):
            delta = deltas[account_id]
            if delta == 0:
                continue
            row = self._session.execute(_MOVE_BALANCE, {"b_account_id": account_id, "b_delta": delta}).first()
            if row is None:
                balance = self._session.execute(_BALANCE, {"b_account_id": account_id}).scalar_one()
                raise BalanceWouldGoNegative(account_id, balance + delta)

    def insert_lines(self, entries: Sequence[JournalEntry]) -> None:
        lines = [(e.entry_id, line) for e in entries for line in e.lines]
        if lines:
            self._session.execute(
                _ADD_LINES,
                {
                    "entry_id": [entry_id for entry_id, _ in lines],
                    "account_id": [line.account.account_id for _, line in lines],
                    "side": [line.side.value for _, line in lines],
                    "amount_minor": [line.amount.minor for _, line in lines],
                    "currency": [line.amount.currency for _, line in lines],
                },
            )

    # -- captures ---------------------------------------------------------------------
    def add_capture(self, record: CaptureRecord, captured_at: datetime, release_at: datetime) -> bool:
        """False when the payment's capture is stored already (its natural key, the payment id)."""
        inserted = self._session.execute(
            insert(captures)
            .values(
                payment_id=record.payment_id,
                merchant_id=record.merchant_id,
                channel=record.channel,
                currency=record.gross.currency,
                gross_minor=record.gross.minor,
                net_minor=record.net.minor,
                unreleased_minor=record.unreleased.minor,
                duplicate=record.duplicate,
                refunded_minor=record.refunded.minor,
                captured_at=captured_at,
                release_at=release_at,
            )
            .on_conflict_do_nothing()
            .returning(captures.c.payment_id)
        ).first()
        return inserted is not None

    def get_capture(self, payment_id: str, *, for_update: bool = False) -> CaptureRecord | None:
        row = self._session.execute(
            _CAPTURE_FOR_UPDATE if for_update else _CAPTURE, {"b_payment_id": payment_id}
        ).first()
        return _capture(row) if row else None

    def save_capture(self, record: CaptureRecord) -> None:
        """What changes of a capture: its pending part and its refunded total."""
        self._session.execute(
            update(captures)
            .where(captures.c.payment_id == record.payment_id)
            .values(unreleased_minor=record.unreleased.minor, refunded_minor=record.refunded.minor)
        )

    def refund_posted(self, refund_id: str) -> bool:
        """Whether the refund's entry is posted, under whatever event id it came."""
        return self._session.execute(_REFUND_POSTED, {"b_refund_id": refund_id}).first() is not None

    def claim_due_releases(self, now: datetime, limit: int) -> list[CaptureRecord]:
        rows = self._session.execute(
            select(captures)
            .where(captures.c.release_at <= now, captures.c.unreleased_minor > 0)
            .order_by(captures.c.release_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_capture(row) for row in rows]

    def lock_payment(self, payment_id: str) -> None:
        """Serialise a payment's capture and its refunds across consumers (replicas)."""
        self._session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:p, 11))"), {"p": payment_id}
        )

    # -- refunds waiting for their capture ---------------------------------------------
    def defer_refund(self, fact: Refunded) -> None:
        self._session.execute(
            insert(deferred_refunds)
            .values(
                event_id=fact.event_id,
                refund_id=fact.refund_id,
                payment_id=fact.payment_id,
                merchant_id=fact.merchant_id,
                channel=fact.channel,
                amount_minor=fact.amount.minor,
                currency=fact.amount.currency,
                automatic=fact.automatic,
                refunded_at=fact.at,
            )
            .on_conflict_do_nothing()
        )

    def take_deferred_refunds(self, payment_id: str) -> list[Refunded]:
        rows = self._session.execute(
            delete(deferred_refunds)
            .where(deferred_refunds.c.payment_id == payment_id)
            .returning(*deferred_refunds.c)
        ).all()
        return [
            Refunded(
                event_id=r.event_id,
                refund_id=r.refund_id,
                payment_id=r.payment_id,
                merchant_id=r.merchant_id,
                channel=r.channel,
                amount=Money(r.amount_minor, r.currency),
                at=r.refunded_at,
                automatic=r.automatic,
            )
            for r in sorted(rows, key=lambda r: r.refunded_at)
        ]

    def deferred(self, limit: int) -> list[Any]:
        return list(
            self._session.execute(
                select(deferred_refunds).order_by(deferred_refunds.c.deferred_at.desc()).limit(limit)
            )
        )

    # -- failures -------------------------------------------------------------------------
    def record_failure(self, event_id: str, event_type: str, reason: str, payload: bytes) -> None:
        self._session.execute(
            insert(posting_failures)
            .values(event_id=event_id, event_type=event_type, reason=reason[:2000], payload=payload)
            .on_conflict_do_update(
                index_elements=["event_id"], set_={"reason": reason[:2000], "failed_at": func.now()}
            )
        )

    def failures(self, limit: int) -> list[Any]:
        return list(
            self._session.execute(
                select(posting_failures).order_by(posting_failures.c.failed_at.desc()).limit(limit)
            )
        )

    # -- reading ---------------------------------------------------------------------------
    def account(self, account_id: str, *, for_update: bool = False) -> StoredAccount | None:
        query = select(accounts).where(accounts.c.account_id == account_id)
        row = self._session.execute(query.with_for_update() if for_update else query).first()
        return _stored(row) if row else None

    def accounts_of(self, owner: str, currency: str) -> list[StoredAccount]:
        rows = self._session.execute(
            select(accounts)
            .where(accounts.c.owner == owner, accounts.c.currency == currency)
            .order_by(accounts.c.account_id)
        )
        return [_stored(row) for row in rows]

    def entry(self, *, entry_id: str = "", event_id: str = "") -> JournalEntry | None:
        column = journal_entries.c.entry_id if entry_id else journal_entries.c.event_id
        row = self._session.execute(select(journal_entries).where(column == (entry_id or event_id))).first()
        if row is None:
            return None
        lines = self._session.execute(
            select(journal_lines)
            .where(journal_lines.c.entry_id == row.entry_id)
            .order_by(journal_lines.c.line_id)
        )
        return JournalEntry(
            entry_id=row.entry_id,
            event_id=row.event_id,
            kind=EntryKind(row.kind),
            reference=row.reference,
            lines=tuple(
                Line(
                    parse_account_id(line.account_id),
                    Side(line.side),
                    Money(line.amount_minor, line.currency),
                )
                for line in lines
            ),
            created_at=row.created_at,
            description=row.description,
            actor=row.actor,
            reason=row.reason,
            reverses_entry_id=row.reverses_entry_id or "",
        )

    def reversal_of(self, entry_id: str) -> str | None:
        return self._session.execute(
            select(journal_entries.c.entry_id).where(journal_entries.c.reverses_entry_id == entry_id)
        ).scalar_one_or_none()

    def account_lines(self, account_id: str, after_line_id: int, limit: int) -> list[Any]:
        return list(
            self._session.execute(
                select(
                    journal_lines.c.line_id,
                    journal_lines.c.entry_id,
                    journal_lines.c.side,
                    journal_lines.c.amount_minor,
                    journal_lines.c.currency,
                    journal_entries.c.kind,
                    journal_entries.c.created_at,
                )
                .join(journal_entries, journal_entries.c.entry_id == journal_lines.c.entry_id)
                .where(journal_lines.c.account_id == account_id, journal_lines.c.line_id > after_line_id)
                .order_by(journal_lines.c.line_id)
                .limit(limit)
            )
        )

    def trial_balance(self) -> tuple[dict[str, tuple[int, int]], int]:
        """Per currency (debits, credits) over every line, and the number of entries."""
        rows = self._session.execute(
            select(
                journal_lines.c.currency, journal_lines.c.side, func.sum(journal_lines.c.amount_minor)
            ).group_by(journal_lines.c.currency, journal_lines.c.side)
        )
        totals: dict[str, list[int]] = {}
        for currency, side, total in rows:
            totals.setdefault(currency, [0, 0])[0 if side == "DEBIT" else 1] += int(total)
        count = self._session.execute(select(func.count()).select_from(journal_entries)).scalar_one()
        return {c: (d, k) for c, (d, k) in totals.items()}, int(count)


def _stored(row: Any) -> StoredAccount:
    account = parse_account_id(row.account_id)
    return StoredAccount(account, Money(row.balance_minor, row.currency))


# -- settlements -------------------------------------------------------------------------


def _settlement(row: Any) -> Settlement:
    return Settlement(
        settlement_id=row.settlement_id,
        idempotency_key=row.idempotency_key,
        merchant_id=row.merchant_id,
        amount=Money(row.amount_minor, row.currency),
        channel=row.channel,
        status=SettlementStatus(row.status),
        created_at=row.created_at,
        payout_reference=row.payout_reference or "",
        failure=row.failure or "",
        paid_out_at=row.paid_out_at,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
    )


class SettlementRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, s: Settlement) -> None:
        self._session.execute(
            settlements.insert().values(
                settlement_id=s.settlement_id,
                idempotency_key=s.idempotency_key,
                merchant_id=s.merchant_id,
                currency=s.amount.currency,
                amount_minor=s.amount.minor,
                channel=s.channel,
                status=s.status.value,
                created_at=s.created_at,
                next_attempt_at=s.next_attempt_at,
            )
        )

    def get(self, settlement_id: str, *, for_update: bool = False) -> Settlement | None:
        query = select(settlements).where(settlements.c.settlement_id == settlement_id)
        row = self._session.execute(query.with_for_update() if for_update else query).first()
        return _settlement(row) if row else None

    def by_key(self, key: str) -> Settlement | None:
        row = self._session.execute(select(settlements).where(settlements.c.idempotency_key == key)).first()
        return _settlement(row) if row else None

    def save(self, s: Settlement) -> None:
        self._session.execute(
            update(settlements)
            .where(settlements.c.settlement_id == s.settlement_id)
            .values(
                status=s.status.value,
                payout_reference=s.payout_reference or None,
                failure=s.failure or None,
                paid_out_at=s.paid_out_at,
                attempts=s.attempts,
                next_attempt_at=s.next_attempt_at,
            )
        )

    def claim_due(self, now: datetime, limit: int, lease_until: datetime) -> list[Settlement]:
        rows = self._session.execute(
            select(settlements)
            .where(
                settlements.c.status == SettlementStatus.PENDING.value, settlements.c.next_attempt_at <= now
            )
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if rows:
            self._session.execute(
                update(settlements)
                .where(settlements.c.settlement_id.in_([r.settlement_id for r in rows]))
                .values(next_attempt_at=lease_until)
            )
        return [_settlement(row) for row in rows]
