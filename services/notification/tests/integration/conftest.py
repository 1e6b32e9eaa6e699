"""A real PostgreSQL database at the head of notification's migrations (the session's
shared server, root conftest; a fresh `ntftest_<random>` database per module), and the
service layer over it. Events are never relayed: the outbox rows stay for the tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from notification.bootstrap import migrate
from notification.service_layer.unit_of_work import NotificationUnitOfWork, UowFactory
from paykit.db import create_engine_for, session_factory
from paykit.devstack.fixtures import create_fresh_database, drop_database
from paykit.devstack.postgres import PostgresServer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

DATABASE_PREFIX = "ntftest_"
POOL_SIZE = 12


@pytest.fixture(scope="module")
def ntf_engine(shared_postgres: PostgresServer) -> Iterator[Engine]:
    name, url = create_fresh_database(shared_postgres, DATABASE_PREFIX)
    migrate(url)
    engine = create_engine_for(url, application_name="ntftest", pool_size=POOL_SIZE)
    try:
        yield engine
    finally:
        engine.dispose()
        drop_database(shared_postgres, name)


@pytest.fixture(scope="module")
def sessions(ntf_engine: Engine) -> sessionmaker[Session]:
    return session_factory(ntf_engine)


@pytest.fixture(scope="module")
def uow_factory(sessions: sessionmaker[Session]) -> UowFactory:
    return lambda: NotificationUnitOfWork(sessions, lambda: None)
