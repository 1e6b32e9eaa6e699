"""Session-wide fixtures: the whole suite as real processes, started once.

Nothing is mocked and nothing is skipped: when no server is named by the
environment (PAYKIT_POSTGRES_URL, KAFKA_BOOTSTRAP_SERVERS) and no Docker engine
answers, paykit.devstack starts a private PostgreSQL cluster and a KRaft Kafka
broker itself and stops them at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from paykit.devstack.fixtures import claim_run_dir
from paykit.devstack.kafka import acquire_kafka
from paykit.devstack.postgres import PostgresServer, acquire_postgres
from paykit.devstack.suite import START_ORDER, Suite
from paykit.messaging.topics import create_topics

REPO_ROOT = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def shared_run_dir() -> Iterator[Path]:
    """`.run/test-shared` (or a numbered sibling while another session holds it): the
    Postgres cluster and broker every library and service test shares, started once."""
    run_dir, release = claim_run_dir("test-shared")
    try:
        yield run_dir
    finally:
        release()


@pytest.fixture(scope="session")
def shared_postgres(shared_run_dir: Path) -> Iterator[PostgresServer]:
    """Tests make their own fresh databases on it (paykit.devstack.fixtures.create_fresh_database)."""
    server, stop = acquire_postgres(shared_run_dir)
    try:
        yield server
    finally:
        stop()


@pytest.fixture(scope="session")
def shared_kafka_bootstrap(shared_run_dir: Path) -> Iterator[str]:
    """A running broker with every declared topic (and its .dlq) created."""
    server, stop = acquire_kafka(shared_run_dir)
    try:
        create_topics(server.bootstrap_servers)
        yield server.bootstrap_servers
    finally:
        stop()


@pytest.fixture(scope="session")
def trace_file() -> Path:
    path = REPO_ROOT / ".run" / "test-suite" / "spans.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    return path


@pytest.fixture(scope="session")
def suite(trace_file: Path) -> Iterator[Suite]:
    running = Suite(REPO_ROOT / ".run" / "test-suite")
    extra = {"PAYKIT_TRACE_FILE": str(trace_file), "LOG_LEVEL": "INFO"}
    # Lifecycle timings shortened so fault tests finish in seconds; kept across restarts.
    timings = {
        "payment_core": {
            "PAYMENT_QUERY_SCHEDULE_S": "1,2,3",
            "PAYMENT_REFUND_RETRY_S": "1,2,3",
            "PAYMENT_CHANNEL_COOL_DOWN_S": "5",
            "PAYMENT_SCHEDULER_POLL_S": "0.2",
            "IDEMPOTENCY_IN_PROGRESS_TIMEOUT_S": "15",
        },
        "accounting": {
            "ACCOUNTING_RELEASE_AFTER_S": "3",
            "ACCOUNTING_SCHEDULER_POLL_S": "0.5",
            # The trial-balance gauge is recomputed every second so tests can read it.
            "ACCOUNTING_TRIAL_BALANCE_POLL_S": "1",
        },
        "notification": {
            "NOTIFICATION_RETRY_SCHEDULE_S": "1,1,1,2,2,2",
            "NOTIFICATION_BREAKER_FAILURES": "50",
            "NOTIFICATION_POLL_S": "0.2",
        },
        "order": {
            "ORDER_CLOSE_RETRY_S": "1,2,3",
            "ORDER_CLOSE_FORCE_AFTER": "10",
            "ORDER_EXPIRY_POLL_S": "0.5",
            "IDEMPOTENCY_IN_PROGRESS_TIMEOUT_S": "15",
        },
    }
    try:
        running.start(
            extra_env={name: {**extra, **timings.get(name, {})} for name in START_ORDER},
            fresh_databases=True,
        )
        yield running
    finally:
        running.stop()
