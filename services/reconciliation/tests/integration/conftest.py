"""A real PostgreSQL database at the head of reconciliation's migrations (the session's shared
server, root conftest; a fresh `recontest_<random>` database per module) and, for the capture,
private copies of payment.events and refund.events on the shared broker (fresh topics per
module, so other tests' payments never reach this capture and its DLQ writes reach no one)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from paykit.db import create_engine_for, session_factory
from paykit.devstack.fixtures import (
    create_fresh_database,
    create_test_topic,
    delete_kafka_topics,
    drop_database,
    unique_name,
)
from paykit.devstack.postgres import PostgresServer
from paykit.messaging.topics import dlq_of
from reconciliation.bootstrap import migrate
from reconciliation.service_layer.unit_of_work import ReconciliationUnitOfWork, UowFactory
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from .support import CaptureProcess

DATABASE_PREFIX = "recontest_"
POOL_SIZE = 8
TOPIC_PARTITIONS = 3


@pytest.fixture(scope="module")
def recon_database(shared_postgres: PostgresServer) -> Iterator[str]:
    name, url = create_fresh_database(shared_postgres, DATABASE_PREFIX)
    migrate(url)
    try:
        yield url
    finally:
        drop_database(shared_postgres, name)


@pytest.fixture(scope="module")
def recon_engine(recon_database: str) -> Iterator[Engine]:
    engine = create_engine_for(recon_database, application_name="recontest", pool_size=POOL_SIZE)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def sessions(recon_engine: Engine) -> sessionmaker[Session]:
    return session_factory(recon_engine)


@pytest.fixture(scope="module")
def uow_factory(sessions: sessionmaker[Session]) -> UowFactory:
    return lambda: ReconciliationUnitOfWork(sessions, lambda: None)


@pytest.fixture(scope="module")
def event_topics(shared_kafka_bootstrap: str) -> Iterator[tuple[str, str]]:
    """(payment topic, refund topic), each with its .dlq."""
    payments = create_test_topic(shared_kafka_bootstrap, "recontest-payment-events-", TOPIC_PARTITIONS)
    refunds = create_test_topic(shared_kafka_bootstrap, "recontest-refund-events-", TOPIC_PARTITIONS)
    try:
        yield payments, refunds
    finally:
        delete_kafka_topics(shared_kafka_bootstrap, [payments, refunds, dlq_of(payments), dlq_of(refunds)])


@pytest.fixture
def capture_env(
    recon_database: str, shared_kafka_bootstrap: str, event_topics: tuple[str, str], tmp_path: Path
) -> dict[str, str]:
    """The capture's settings for one test: its own consumer group on the module's topics."""
    return {
        "RECON_DATABASE_URL": recon_database,
        "KAFKA_BOOTSTRAP_SERVERS": shared_kafka_bootstrap,
        "RECON_CAPTURE_TOPICS": ",".join(event_topics),
        "RECON_CAPTURE_GROUP": unique_name("recontest-capture-"),
        "RECON_CAPTURE_DATA_DIR": str(tmp_path / "faust"),
        "RECON_CAPTURE_BATCH_WAIT_S": "0.1",
        "MIGRATE_ON_START": "false",
        "LOG_LEVEL": "INFO",
    }


@pytest.fixture
def capture(capture_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., CaptureProcess]]:
    """Start capture processes (stopped at the end); `capture(**env)` overrides settings."""
    started: list[CaptureProcess] = []

    def start(name: str = "capture", **env: str) -> CaptureProcess:
        process = CaptureProcess({**capture_env, **env}, tmp_path, name).start()
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.kill()
