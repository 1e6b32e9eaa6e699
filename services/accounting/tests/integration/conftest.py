"""A real PostgreSQL database at the head of accounting's migrations, and the service
layer over it. The server is the session's shared one (root conftest); each test
module gets a fresh `acctest_<random>` database, so the migrations are tested too.
Events are never relayed here: every unit of work gets `lambda: None` as its
after-commit hook and the outbox rows stay where the tests can count them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from accounting.bootstrap import migrate
from accounting.service_layer.unit_of_work import LedgerUnitOfWork, UowFactory
from paykit.db import create_engine_for, session_factory
from paykit.devstack.fixtures import create_fresh_database, drop_database
from paykit.devstack.postgres import PostgresServer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

DATABASE_PREFIX = "acctest_"
# The concurrency tests run 8 posting threads at once, plus the test's own reads.
POOL_SIZE = 12


@pytest.fixture(scope="module")
def ledger_url(shared_postgres: PostgresServer) -> Iterator[str]:
    """A fresh database migrated to head; dropped after the module."""
    name, url = create_fresh_database(shared_postgres, DATABASE_PREFIX)
    migrate(url)
    try:
        yield url
    finally:
        drop_database(shared_postgres, name)


@pytest.fixture(scope="module")
def ledger_engine(ledger_url: str) -> Iterator[Engine]:
    engine = create_engine_for(ledger_url, application_name="acctest", pool_size=POOL_SIZE)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def sessions(ledger_engine: Engine) -> sessionmaker[Session]:
    return session_factory(ledger_engine)


@pytest.fixture(scope="module")
def uow_factory(sessions: sessionmaker[Session]) -> UowFactory:
    return lambda: LedgerUnitOfWork(sessions, lambda: None)
