"""Real PostgreSQL (a fresh, migrated database), a real Kafka broker, the sandbox on loopback.

Servers come from paykit.devstack under `.run/test-channel-gateway` (a numbered
sibling while another pytest session holds it), or from PAYKIT_POSTGRES_URL /
KAFKA_BOOTSTRAP_SERVERS. Nothing is skipped: a server that cannot start fails
the tests. Fixture names carry a `gw_` prefix so they cannot clash with others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from channel_gateway.bootstrap import migrate
from channel_simulator.behaviour import Behaviour
from channel_simulator.harness import LoopThread
from paykit.db import create_engine_for
from paykit.devstack.fixtures import create_fresh_database, drop_database
from paykit.devstack.postgres import PostgresServer

from services.channel_gateway.tests.integration.support import Stack, start_stack, stop_stack

DATABASE_PREFIX = "gwtest_"
POOL_SIZE = 8


@pytest.fixture(scope="session")
def gw_postgres(shared_postgres: PostgresServer) -> PostgresServer:
    return shared_postgres


@pytest.fixture(scope="session")
def gw_fresh_database(gw_postgres: PostgresServer) -> Iterator[Callable[[], str]]:
    """Factory: a new empty database (dropped at the end of the session); returns its URL."""
    made: list[str] = []

    def make() -> str:
        name, url = create_fresh_database(gw_postgres, DATABASE_PREFIX)
        made.append(name)
        return url

    yield make
    for name in made:
        drop_database(gw_postgres, name)


@pytest.fixture(scope="session")
def gw_kafka(shared_kafka_bootstrap: str) -> str:
    return shared_kafka_bootstrap


@pytest.fixture(scope="session")
def gw_stack(gw_fresh_database: Callable[[], str], gw_kafka: str) -> Iterator[Stack]:
    url = gw_fresh_database()
    migrate(url)
    engine = create_engine_for(url, application_name="channel-gateway-test", pool_size=POOL_SIZE)
    loop = LoopThread("gateway-test-loop")
    stack = loop.run(start_stack(loop, engine, gw_kafka))
    try:
        yield stack
    finally:
        loop.run(stop_stack(stack))
        loop.stop()
        stack.publisher.stop()
        engine.dispose()


@pytest.fixture
def stack(gw_stack: Stack) -> Iterator[Stack]:
    """The session's stack, with every sandbox account back at the default behaviour after the test."""
    yield gw_stack
    gw_stack.sandbox("/v1/admin/config", Behaviour().as_dict())
