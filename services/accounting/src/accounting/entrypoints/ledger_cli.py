"""`python -m accounting.entrypoints.ledger_cli check`: the whole ledger checked with SQL.

    check [--database-url URL | --suite-record PATH]

URL defaults to ACCOUNTING_DATABASE_URL; PATH is the record `make up` writes
(.run/suite/suite.json), whose database_urls.accounting is used. The checks,
read in one REPEATABLE READ snapshot so a ledger being posted to is seen whole:

* every journal entry has at least 2 lines, and its debits equal its credits
  in each currency;
* every account's stored balance equals the sum of its lines in its normal
  direction (asset, expense: debits - credits; liability, income: credits - debits);
* the trial balance: per currency, total debits equal total credits;
* no account flagged must_not_go_negative is negative.

Exit 0 when all hold, 1 when one does not (offenders listed, up to
MAX_OFFENDERS each), 2 for usage or connection errors (a message, no traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from paykit.db.engine import with_driver
from paykit.money import Money
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import NullPool

ENV_DATABASE_URL = "ACCOUNTING_DATABASE_URL"
EXIT_SOUND, EXIT_UNSOUND, EXIT_USAGE = 0, 1, 2
MAX_OFFENDERS = 20
CONNECT_TIMEOUT_S = 5
# Long enough for a full scan of a large ledger; a check never hangs forever on a lock.
STATEMENT_TIMEOUT_MS = 600_000

_DEBIT_NET = "CASE WHEN side = 'DEBIT' THEN amount_minor ELSE -amount_minor END"

_COUNTS = text(
    "SELECT (SELECT count(*) FROM journal_entries) AS entries,"
    " (SELECT count(*) FROM journal_lines) AS lines,"
    " (SELECT count(*) FROM accounts) AS accounts"
)
# Per entry and currency: its lines, debits and credits.
_ENTRY_SUMS = (
    "SELECT entry_id, currency, count(*) AS lines,"
    " sum(CASE WHEN side = 'DEBIT' THEN amount_minor ELSE 0 END) AS debits,"
    " sum(CASE WHEN side = 'CREDIT' THEN amount_minor ELSE 0 END) AS credits"
    " FROM journal_lines"
)
# Entries with fewer than 2 lines, or debits != credits in some currency; each counted once.
_OFFENDING_ENTRIES = text(
    f"WITH per_currency AS ({_ENTRY_SUMS} GROUP BY entry_id, currency),"
    " offending AS ("
    "  SELECT e.entry_id, coalesce(sum(p.lines), 0) AS lines"
    "  FROM journal_entries e LEFT JOIN per_currency p ON p.entry_id = e.entry_id"
    "  GROUP BY e.entry_id"
    "  HAVING coalesce(sum(p.lines), 0) < 2 OR coalesce(bool_or(p.debits <> p.credits), false)"
    ")"
    " SELECT entry_id, lines, count(*) OVER () AS offenders FROM offending ORDER BY entry_id LIMIT :limit"
)
_UNBALANCED_CURRENCIES = text(
    f"{_ENTRY_SUMS} WHERE entry_id = ANY(:entry_ids) GROUP BY entry_id, currency"
    " HAVING sum(CASE WHEN side = 'DEBIT' THEN amount_minor ELSE -amount_minor END) <> 0"
    " ORDER BY entry_id, currency"
)
_WRONG_BALANCES = text(
    "WITH sums AS ("
    f"  SELECT account_id, sum({_DEBIT_NET}) AS debit_net FROM journal_lines GROUP BY account_id"
    "), expected AS ("
    "  SELECT a.account_id, a.currency, a.balance_minor,"
    "   CASE WHEN a.type IN ('asset', 'expense') THEN coalesce(s.debit_net, 0)"
    "        ELSE -coalesce(s.debit_net, 0) END AS from_lines"
    "  FROM accounts a LEFT JOIN sums s ON s.account_id = a.account_id"
    ")"
    " SELECT account_id, currency, balance_minor, from_lines, count(*) OVER () AS offenders"
    " FROM expected WHERE balance_minor <> from_lines ORDER BY account_id LIMIT :limit"
)
_TRIAL_BALANCE = text(
    "SELECT currency,"
    " sum(CASE WHEN side = 'DEBIT' THEN amount_minor ELSE 0 END) AS debits,"
    " sum(CASE WHEN side = 'CREDIT' THEN amount_minor ELSE 0 END) AS credits"
    " FROM journal_lines GROUP BY currency ORDER BY currency"
)
_NEGATIVE = text(
    "SELECT account_id, currency, balance_minor, count(*) OVER () AS offenders FROM accounts"
    " WHERE must_not_go_negative AND balance_minor < 0 ORDER BY account_id LIMIT :limit"
)


class UsageError(Exception):
    """Bad arguments, no database to check, or a database that cannot be read: exit 2."""


def amount(minor: int, currency: str) -> str:
    """`12.34 CNY`; sums beyond what a Money may hold (or odd currencies) in minor units."""
    try:
        return str(Money(minor, currency))
    except ValueError:
        return f"{minor} minor units of {currency}"


@dataclass
class Check:
    title: str
    offenders: int = 0
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.offenders == 0


@dataclass
class Report:
    entries: int
    lines: int
    accounts: int
    checks: list[Check]

    @property
    def sound(self) -> bool:
        return all(check.ok for check in self.checks)


def _rows(conn: Connection, query: Any) -> list[Any]:
    return list(conn.execute(query, {"limit": MAX_OFFENDERS}))


def _check_entries(conn: Connection) -> Check:
    rows = _rows(conn, _OFFENDING_ENTRIES)
    check = Check(
        "every entry has >= 2 lines and debits = credits per currency", rows[0].offenders if rows else 0
    )
    unbalanced: dict[str, list[str]] = {}
    for r in conn.execute(_UNBALANCED_CURRENCIES, {"entry_ids": [row.entry_id for row in rows]}):
        unbalanced.setdefault(r.entry_id, []).append(
            f"{r.currency} debits {amount(int(r.debits), r.currency)}"
            f" != credits {amount(int(r.credits), r.currency)}"
        )
    for r in rows:
        problems = [f"{r.lines} line(s)"] if r.lines < 2 else []
        check.details.append(f"entry {r.entry_id}: " + "; ".join(problems + unbalanced.get(r.entry_id, [])))
    return check


def _check_balances(conn: Connection) -> Check:
    rows = _rows(conn, _WRONG_BALANCES)
    check = Check("every account's balance equals the sum of its lines", rows[0].offenders if rows else 0)
    check.details = [
        f"account {r.account_id}: balance {amount(int(r.balance_minor), r.currency)},"
        f" lines sum to {amount(int(r.from_lines), r.currency)}"
        for r in rows
    ]
    return check


def _check_trial_balance(conn: Connection) -> Check:
    check = Check("trial balance: debits = credits per currency")
    for r in conn.execute(_TRIAL_BALANCE):
        debits, credits = int(r.debits), int(r.credits)
        check.offenders += debits != credits
        check.details.append(
            f"{r.currency}: debits {amount(debits, r.currency)}, credits {amount(credits, r.currency)},"
            f" difference {amount(debits - credits, r.currency)}"
        )
    return check


def _check_not_negative(conn: Connection) -> Check:
    rows = _rows(conn, _NEGATIVE)
    check = Check("no must-not-go-negative account is negative", rows[0].offenders if rows else 0)
    check.details = [f"account {r.account_id}: {amount(int(r.balance_minor), r.currency)}" for r in rows]
    return check


def check_ledger(conn: Connection) -> Report:
    """Every check, on whatever snapshot `conn`'s transaction reads."""
    counts = conn.execute(_COUNTS).one()
    checks = [_check_entries(conn), _check_balances(conn), _check_trial_balance(conn)]
    checks.append(_check_not_negative(conn))
    return Report(counts.entries, counts.lines, counts.accounts, checks)


def read_ledger(database_url: str) -> Report:
    try:
        shown = make_url(with_driver(database_url)).render_as_string(hide_password=True)
        engine = create_engine(
            with_driver(database_url),
            poolclass=NullPool,
            connect_args={
                "connect_timeout": CONNECT_TIMEOUT_S,
                "application_name": "ledger-check",
                "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
            },
        )
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
        raise UsageError(f"not a PostgreSQL URL this tool can use: {exc}") from None
    try:
        with engine.connect() as conn:
            snapshot = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with snapshot.begin():
                return check_ledger(snapshot)
    except DBAPIError as exc:
        first_line = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise UsageError(f"cannot check the ledger at {shown}: {first_line}") from None
    finally:
        engine.dispose()


def print_report(report: Report, out: TextIO) -> None:
    print(f"entries: {report.entries}, lines: {report.lines}, accounts: {report.accounts}", file=out)
    for check in report.checks:
        verdict = "ok  " if check.ok else "FAIL"
        suffix = "" if check.ok or not check.offenders else f" ({check.offenders} offending)"
        print(f"[{verdict}] {check.title}{suffix}", file=out)
        for detail in check.details:
            print(f"         {detail}", file=out)
        if len(check.details) < check.offenders:
            print(f"         ... and {check.offenders - len(check.details)} more", file=out)
    print("ledger is sound" if report.sound else "ledger is NOT sound", file=out)


def database_url_from(args: argparse.Namespace) -> str:
    if args.database_url:
        return str(args.database_url)
    if args.suite_record:
        return _url_from_suite_record(Path(args.suite_record))
    url = os.environ.get(ENV_DATABASE_URL, "")
    if not url:
        raise UsageError(
            f"no database to check: give --database-url, --suite-record, or set {ENV_DATABASE_URL}"
        )
    return url


def _url_from_suite_record(path: Path) -> str:
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"no suite record at {path}: is the suite running (`make up`)?") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the suite record {path}: {exc}") from None
    urls = record.get("database_urls") if isinstance(record, dict) else None
    url = urls.get("accounting") if isinstance(urls, dict) else None
    if not isinstance(url, str) or not url:
        raise UsageError(f"the suite record {path} has no database_urls.accounting")
    return url


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ledger", description="Checks accounting's double-entry ledger.")
    commands = top.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="check the whole ledger; exit 0 sound, 1 not, 2 error")
    source = check.add_mutually_exclusive_group()
    source.add_argument("--database-url", help=f"accounting's PostgreSQL URL (default: ${ENV_DATABASE_URL})")
    source.add_argument("--suite-record", help="a suite.json written by `make up`; uses its accounting URL")
    return top


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    args = parser().parse_args(argv)  # exits 2 with usage on bad arguments
    try:
        report = read_ledger(database_url_from(args))
    except UsageError as exc:
        print(f"ledger check: {exc}", file=err)
        return EXIT_USAGE
    print_report(report, out)
    return EXIT_SOUND if report.sound else EXIT_UNSOUND


if __name__ == "__main__":
    sys.exit(main())
