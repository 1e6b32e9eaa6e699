"""The trial-balance gauge, from the same query as the TrialBalance call, against a real
migrated ledger: 0 for sound books, the exact difference once an entry is forged with raw
SQL (the only way to unbalance it). Own database: journal rows cannot be undone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from accounting.bootstrap import migrate
from accounting.domain import accounts as chart
from accounting.domain.fees import FeeSchedule
from accounting.domain.posting_rules import Captured
from accounting.service_layer.ledger import Policy, post_capture
from accounting.service_layer.monitoring import measure_trial_balance
from accounting.service_layer.unit_of_work import LedgerUnitOfWork, UowFactory
from paykit.db import create_engine_for, session_factory
from paykit.devstack.fixtures import create_fresh_database, drop_database
from paykit.devstack.postgres import PostgresServer
from paykit.money import Money
from prometheus_client import REGISTRY
from sqlalchemy import Engine, text

POLICY = Policy(FeeSchedule(), timedelta(days=1))
# A currency no other test's ledger uses, so this module owns its gauge series.
CURRENCY = "CHF"


def difference(currency: str) -> float | None:
    return REGISTRY.get_sample_value("paykit_ledger_trial_balance_difference_minor", {"currency": currency})


@pytest.fixture
def ledger(shared_postgres: PostgresServer) -> Iterator[tuple[Engine, UowFactory]]:
    name, url = create_fresh_database(shared_postgres, "acctest_gauge_")
    migrate(url)
    engine = create_engine_for(url, application_name="acctest-gauge", pool_size=2)
    sessions = session_factory(engine)

    def uow_factory() -> LedgerUnitOfWork:
        return LedgerUnitOfWork(sessions, lambda: None)

    try:
        yield engine, uow_factory
    finally:
        engine.dispose()
        drop_database(shared_postgres, name)


def test_the_gauge_reads_debits_minus_credits_per_currency(ledger: tuple[Engine, UowFactory]) -> None:
    engine, uow_factory = ledger
    captured = Captured("evt_g1", "pay_g1", "m-1", "simulator", Money(10_000, CURRENCY), datetime.now(UTC))
    with uow_factory() as uow:
        post_capture(uow, captured, POLICY)
        uow.commit()

    assert measure_trial_balance(uow_factory) is True
    assert difference(CURRENCY) == 0

    account = chart.channel_clearing("simulator", CURRENCY).account_id
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO journal_entries (entry_id, event_id, kind, reference, description, actor,"
                " reason, created_at)"
                " VALUES ('jnl_forged', 'evt_forged', 'adjustment', 'x', '', '', '', now())"
            )
        )
        conn.execute(
            text(
                "INSERT INTO journal_lines (entry_id, account_id, side, amount_minor, currency)"
                " VALUES ('jnl_forged', :account, 'DEBIT', 38, :currency)"
            ),
            {"account": account, "currency": CURRENCY},
        )

    assert measure_trial_balance(uow_factory) is False
    assert difference(CURRENCY) == 38
    print(f"\ntrial balance gauge: sound books {CURRENCY} 0; one forged 0.38 debit -> 38")
