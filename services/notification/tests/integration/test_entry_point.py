"""`python -m notification migrate` against a fresh database, and a clear start-up error."""

from __future__ import annotations

import os
import subprocess
import sys

from paykit.devstack.fixtures import create_fresh_database, drop_database
from paykit.devstack.postgres import PostgresServer
from sqlalchemy import create_engine, inspect

ENTRY_TIMEOUT_S = 60


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFICATION_")}
    clean.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    return subprocess.run(
        [sys.executable, "-m", "notification", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=ENTRY_TIMEOUT_S,
        check=False,
    )


def test_migrate_creates_the_tables(shared_postgres: PostgresServer) -> None:
    name, url = create_fresh_database(shared_postgres, "ntfmig_")
    try:
        done = run({"NOTIFICATION_DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "migrate")
        assert done.returncode == 0, done.stderr
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
        try:
            tables = set(inspect(engine).get_table_names())
        finally:
            engine.dispose()
        assert {"endpoints", "deliveries", "attempts", "outbox", "inbox", "idempotency_keys"} <= tables
    finally:
        drop_database(shared_postgres, name)


def test_missing_or_bad_settings_stop_with_the_variable_names() -> None:
    done = run({"NOTIFICATION_RETRY_SCHEDULE_S": "15,-1"}, "migrate")
    assert done.returncode == 2
    assert "NOTIFICATION_DATABASE_URL is required" in done.stderr
    assert "KAFKA_BOOTSTRAP_SERVERS is required" in done.stderr
    assert "secret" not in done.stderr.lower()
    bad = run(
        {
            "NOTIFICATION_DATABASE_URL": "x",
            "KAFKA_BOOTSTRAP_SERVERS": "y",
            "NOTIFICATION_RETRY_SCHEDULE_S": "15,-1",
        },
        "migrate",
    )
    assert bad.returncode == 2
    assert "NOTIFICATION_RETRY_SCHEDULE_S" in bad.stderr
