"""Real Postgres and a real Kafka broker for the messaging library's tests.

Both are the session's shared servers (root conftest: started on demand under
`<repo>/.run/test-shared`, or taken from PAYKIT_POSTGRES_URL /
KAFKA_BOOTSTRAP_SERVERS). Nothing is skipped when a server is missing: it is
started, and a failure to start fails the tests.

Fixture names carry a `msg_` prefix so they cannot clash with session
fixtures a repo-level conftest may define for every test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from paykit.db import create_engine_for
from paykit.devstack.fixtures import (
    create_fresh_database,
    create_test_topic,
    delete_kafka_topics,
    drop_database,
)
from paykit.devstack.postgres import PostgresServer
from paykit.messaging import schema
from paykit.messaging.topics import dlq_of
from sqlalchemy import Engine, text

DATABASE_PREFIX = "msgtest_"
# A table the tests' handlers write to, so "the effect happened once" is countable.
EFFECTS_DDL = """
CREATE TABLE IF NOT EXISTS test_effects (
    id BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL,
    note TEXT NOT NULL
)
"""


@pytest.fixture(scope="session")
def msg_postgres_server(shared_postgres: PostgresServer) -> PostgresServer:
    return shared_postgres


@pytest.fixture(scope="session")
def msg_postgres_url(msg_postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh `msgtest_<random>` database holding the outbox and inbox tables."""
    name, url = create_fresh_database(msg_postgres_server, DATABASE_PREFIX)
    engine = create_engine_for(url, application_name="msgtest-setup", pool_size=1)
    try:
        schema.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(text(EFFECTS_DDL))
    finally:
        engine.dispose()
    try:
        yield url
    finally:
        drop_database(msg_postgres_server, name)


@pytest.fixture(scope="session")
def msg_engine(msg_postgres_url: str) -> Iterator[Engine]:
    engine = create_engine_for(msg_postgres_url, application_name="msgtest", pool_size=5)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def msg_clean_tables(msg_engine: Engine) -> None:
    """Each test starts with empty outbox, inbox and effects tables.

    The relay publishes every unsent row of the database, so a row left behind
    by an earlier (failed) test must not leak into the next one.
    """
    with msg_engine.begin() as conn:
        conn.execute(text("TRUNCATE outbox, inbox, test_effects RESTART IDENTITY"))


@pytest.fixture(scope="session")
def msg_kafka_bootstrap(shared_kafka_bootstrap: str) -> str:
    """The shared broker, every declared topic (and its .dlq) created (root conftest)."""
    return shared_kafka_bootstrap


@pytest.fixture
def msg_new_topic(msg_kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """Factory: a fresh `test.<kind>.<random>` topic plus its `.dlq`, deleted after the test."""
    created: list[str] = []

    def make(kind: str, partitions: int = 1) -> str:
        name = create_test_topic(msg_kafka_bootstrap, f"test.{kind}.", partitions)
        created.extend([name, dlq_of(name)])
        return name

    yield make
    delete_kafka_topics(msg_kafka_bootstrap, created)
