"""`ledger check` against a real migrated database: sound books pass; a corrupted
balance, an unbalanced entry (only insertable with raw SQL) or a negative balance
fail naming the culprit; usage and connection errors exit 2 without a traceback.

Each test gets its own database: journal rows are immutable, so a corruption
cannot be undone for the next test."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from accounting.bootstrap import migrate
from accounting.domain import accounts as chart
from accounting.domain.accounts import Side
from accounting.domain.fees import FeeSchedule
from accounting.domain.posting_rules import Captured, Refunded
from accounting.entrypoints.ledger_cli import EXIT_SOUND, EXIT_UNSOUND, EXIT_USAGE, MAX_OFFENDERS, main
from accounting.service_layer import adjustments
from accounting.service_layer.adjustments import RequestedLine
from accounting.service_layer.ledger import Policy, post_capture, post_refund, release_payment
from accounting.service_layer.settlement import Settlements
from accounting.service_layer.unit_of_work import LedgerUnitOfWork
from paykit.db import create_engine_for, session_factory
from paykit.devstack.fixtures import create_fresh_database, drop_database
from paykit.devstack.postgres import PostgresServer
from paykit.money import Money
from sqlalchemy import Engine, text

from services.accounting.tests.integration.support import ScriptedPayouts

CLI = [sys.executable, "-m", "accounting.entrypoints.ledger_cli"]
CLI_TIMEOUT_S = 60
POLICY = Policy(FeeSchedule(), timedelta(days=1))


@dataclass(frozen=True)
class Books:
    url: str
    engine: Engine


def post_sound_books(engine: Engine) -> None:
    """A little of everything, through the service: captures in two currencies, a duplicate,
    refunds, a release, a settlement paid out, an adjustment to suspense and its reversal."""
    sessions = session_factory(engine)

    def uow_factory() -> LedgerUnitOfWork:
        return LedgerUnitOfWork(sessions, lambda: None)

    at = datetime.now(UTC)
    facts = [
        Captured("evt_1", "pay_1", "m-1", "simulator", Money(10_000, "CNY"), at),
        Captured("evt_2", "pay_2", "m-1", "simulator", Money(2_500, "USD"), at),
        Captured("evt_3", "pay_3", "m-2", "simulator_b", Money(777, "CNY"), at, duplicate=True),
    ]
    with uow_factory() as uow:
        for fact in facts:
            post_capture(uow, fact, POLICY)
        post_refund(
            uow, Refunded("evt_4", "rfd_1", "pay_1", "m-1", "simulator", Money(1_000, "CNY"), at), POLICY
        )
        post_refund(
            uow,
            Refunded("evt_5", "rfd_2", "pay_3", "m-2", "simulator_b", Money(777, "CNY"), at, True),
            POLICY,
        )
        release_payment(uow, "pay_2", at)
        uow.commit()
    asyncio.run(Settlements(uow_factory, ScriptedPayouts(), "simulator").run("stl-1", "m-1", "USD"))
    lines = [
        RequestedLine(chart.channel_clearing("simulator", "CNY").account_id, Side.DEBIT, Money(3, "CNY")),
        RequestedLine(chart.suspense("CNY").account_id, Side.CREDIT, Money(3, "CNY")),
    ]
    adjusted = adjustments.post_adjustment(
        uow_factory, "adj-1", lines, "statement shows 0.03 more", "ops", ""
    )
    adjustments.reverse(uow_factory, "rev-1", adjusted.entry_id, "matched after all", "ops")


@pytest.fixture
def books(shared_postgres: PostgresServer) -> Iterator[Books]:
    name, url = create_fresh_database(shared_postgres, "acctest_cli_")
    migrate(url)
    engine = create_engine_for(url, application_name="acctest-cli", pool_size=2)
    try:
        post_sound_books(engine)
        yield Books(url, engine)
    finally:
        engine.dispose()
        drop_database(shared_postgres, name)


def check(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["check", *args], out, err)
    return code, out.getvalue(), err.getvalue()


def corrupt(books: Books, *statements: str) -> None:
    with books.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def test_sound_books_pass_every_check(books: Books) -> None:
    code, out, err = check("--database-url", books.url)

    assert (code, err) == (EXIT_SOUND, "")
    assert "entries: 10, lines: 27, accounts: 14" in out
    assert "FAIL" not in out
    assert "CNY: debits " in out and "difference 0.00 CNY" in out
    assert "USD: debits " in out
    assert out.rstrip().endswith("ledger is sound")


def test_a_balance_that_is_not_the_sum_of_its_lines_fails_naming_the_account(books: Books) -> None:
    account = chart.merchant_pending("m-1", "CNY").account_id
    corrupt(books, f"UPDATE accounts SET balance_minor = balance_minor + 1 WHERE account_id = '{account}'")

    code, out, _ = check("--database-url", books.url)

    assert code == EXIT_UNSOUND
    assert "[FAIL] every account's balance equals the sum of its lines (1 offending)" in out
    assert f"account {account}: balance 89.47 CNY, lines sum to 89.46 CNY" in out
    assert out.rstrip().endswith("ledger is NOT sound")


def test_an_entry_with_one_line_fails_naming_the_entry(books: Books) -> None:
    account = chart.channel_clearing("simulator", "CNY").account_id
    corrupt(
        books,
        "INSERT INTO journal_entries (entry_id, event_id, kind, reference, description, actor, reason,"
        " created_at) VALUES ('jnl_forged', 'evt_forged', 'adjustment', 'x', '', '', '', now())",
        "INSERT INTO journal_lines (entry_id, account_id, side, amount_minor, currency)"
        f" VALUES ('jnl_forged', '{account}', 'DEBIT', 500, 'CNY')",
    )

    code, out, _ = check("--database-url", books.url)

    assert code == EXIT_UNSOUND
    assert "debits = credits per currency (1 offending)" in out
    assert "entry jnl_forged: 1 line(s); CNY debits 5.00 CNY != credits 0.00 CNY" in out
    assert "difference 5.00 CNY" in out  # the trial balance is off by as much
    assert f"account {account}:" in out  # and the account's balance no longer matches its lines


def test_unbalanced_entries_are_listed_up_to_the_limit(books: Books) -> None:
    forged = MAX_OFFENDERS + 5
    clearing = chart.channel_clearing("simulator", "USD").account_id
    bank = chart.settlement_bank("USD").account_id
    statements = []
    for n in range(forged):
        statements += [
            "INSERT INTO journal_entries (entry_id, event_id, kind, reference, description, actor, reason,"
            f" created_at) VALUES ('jnl_f{n:02}', 'evt_f{n:02}', 'adjustment', 'x', '', '', '', now())",
            "INSERT INTO journal_lines (entry_id, account_id, side, amount_minor, currency)"
            f" VALUES ('jnl_f{n:02}', '{clearing}', 'DEBIT', 100, 'USD'),"
            f" ('jnl_f{n:02}', '{bank}', 'CREDIT', 99, 'USD')",
        ]
    corrupt(books, *statements)

    code, out, _ = check("--database-url", books.url)

    assert code == EXIT_UNSOUND
    assert f"debits = credits per currency ({forged} offending)" in out
    assert "entry jnl_f00: USD debits 1.00 USD != credits 0.99 USD" in out
    assert f"... and {forged - MAX_OFFENDERS} more" in out


def test_a_negative_balance_that_must_not_be_fails_naming_the_account(books: Books) -> None:
    account = chart.merchant_available("m-1", "USD").account_id
    corrupt(
        books,
        "ALTER TABLE accounts DROP CONSTRAINT accounts_not_negative",
        f"UPDATE accounts SET balance_minor = -7 WHERE account_id = '{account}'",
    )

    code, out, _ = check("--database-url", books.url)

    assert code == EXIT_UNSOUND
    assert "[FAIL] no must-not-go-negative account is negative (1 offending)" in out
    assert f"account {account}: -0.07 USD" in out


def test_the_suite_record_names_the_database(books: Books, tmp_path: Path) -> None:
    record = tmp_path / "suite.json"
    record.write_text(json.dumps({"database_urls": {"accounting": books.url, "order": "postgresql://x/y"}}))
    assert check("--suite-record", str(record))[0] == EXIT_SOUND

    record.write_text(json.dumps({"database_urls": {"order": "postgresql://x/y"}}))
    code, _, err = check("--suite-record", str(record))
    assert (code, err.strip()) == (
        EXIT_USAGE,
        f"ledger check: the suite record {record} has no database_urls.accounting",
    )

    code, _, err = check("--suite-record", str(tmp_path / "absent.json"))
    assert code == EXIT_USAGE and "is the suite running (`make up`)?" in err


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env=env, check=False
    )


def test_the_database_url_comes_from_the_environment(books: Books) -> None:
    done = run_cli("check", env={**os.environ, "ACCOUNTING_DATABASE_URL": books.url})
    assert done.returncode == EXIT_SOUND, done.stderr
    assert "ledger is sound" in done.stdout


def test_usage_and_connection_errors_exit_2_with_a_message_and_no_traceback() -> None:
    bare = {k: v for k, v in os.environ.items() if k != "ACCOUNTING_DATABASE_URL"}
    cases = [
        (
            ("check",),
            "no database to check: give --database-url, --suite-record, or set ACCOUNTING_DATABASE_URL",
        ),
        (("check", "--database-url", "postgresql://ops:s3cret@127.0.0.1:1/accounting"), "Connection refused"),
        (("check", "--database-url", "not a url"), "not a PostgreSQL URL"),
        (("check", "--database-url", "postgresql://a@b/c", "--suite-record", "x.json"), "not allowed with"),
        (("audit",), "invalid choice"),
    ]
    for args, message in cases:
        done = run_cli(*args, env=bare)
        assert done.returncode == EXIT_USAGE, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr and "s3cret" not in done.stderr
