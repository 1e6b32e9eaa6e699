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
from paykit.devstack.suite import Suite

REPO_ROOT = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.path):
            item.add_marker(pytest.mark.e2e)


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
        "order": {
            "ORDER_CLOSE_RETRY_S": "1,2,3",
            "ORDER_CLOSE_FORCE_AFTER": "10",
            "ORDER_EXPIRY_POLL_S": "0.5",
            "IDEMPOTENCY_IN_PROGRESS_TIMEOUT_S": "15",
        },
    }
    try:
        running.start(
            extra_env={
                name: {**extra, **timings.get(name, {})}
                for name in ("order", "payment_core", "channel_gateway", "channel_simulator")
            },
            fresh_databases=True,
        )
        yield running
    finally:
        running.stop()
