"""A real PostgreSQL database at the head of payment-core's migrations, and the
service layer over it. The channel side is not needed: these tests drive the
use cases that decide money under concurrency (duplicates, refund reservations)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from paykit.db import create_engine_for, session_factory
from paykit.devstack.fixtures import create_fresh_database, drop_database
from paykit.devstack.postgres import PostgresServer
from payment_core.bootstrap import migrate
from payment_core.service_layer.context import UowFactory
from payment_core.service_layer.unit_of_work import PaymentUnitOfWork
from sqlalchemy import Engine

DATABASE_PREFIX = "paytest_"


@pytest.fixture(scope="module")
def pay_engine(shared_postgres: PostgresServer) -> Iterator[Engine]:
    name, url = create_fresh_database(shared_postgres, DATABASE_PREFIX)
    migrate(url)
    engine = create_engine_for(url, application_name="paytest", pool_size=24)
    try:
        yield engine
    finally:
        engine.dispose()
        drop_database(shared_postgres, name)


@pytest.fixture(scope="module")
def uow_factory(pay_engine: Engine) -> UowFactory:
    sessions = session_factory(pay_engine)
    return lambda: PaymentUnitOfWork(sessions, lambda: None)
