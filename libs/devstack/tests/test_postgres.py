"""acquire_postgres against a real server: the private cluster here, a container under Docker."""

from __future__ import annotations

import json
import pathlib
import shutil

import psycopg2
import pytest
from paykit.devstack.postgres import ENV_POSTGRES_URL, acquire_postgres, ensure_database
from paykit.devstack.procs import pid_alive

DATABASE = "devstack_smoke"
AMOUNT_MINOR = 12345


def _cleanup_cluster_dir(run_dir: pathlib.Path) -> None:
    # Each pytest tmp dir hashes to its own /tmp/paykit-pg-* cluster (~40 MB);
    # remove it so repeated test runs do not fill /tmp.
    link = run_dir / "pg"
    if link.is_symlink():
        shutil.rmtree(link.resolve(), ignore_errors=True)


def test_acquire_create_query_stop(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Always exercise a server this test starts (not one someone configured).
    monkeypatch.delenv(ENV_POSTGRES_URL, raising=False)
    server, stop = acquire_postgres(tmp_path)
    try:
        url = ensure_database(server, DATABASE)
        assert url == server.url_for(DATABASE)
        assert ensure_database(server, DATABASE) == url  # idempotent

        conn = psycopg2.connect(url)
        try:
            with conn, conn.cursor() as cur:
                cur.execute("CREATE TABLE payment (id serial PRIMARY KEY, amount_minor bigint)")
                cur.execute("INSERT INTO payment (amount_minor) VALUES (%s)", (AMOUNT_MINOR,))
            with conn.cursor() as cur:
                cur.execute("SELECT amount_minor FROM payment")
                assert cur.fetchall() == [(AMOUNT_MINOR,)]
        finally:
            conn.close()

        record_path = tmp_path / "postgres.json"
        record = json.loads(record_path.read_text()) if record_path.exists() else None
    finally:
        stop()

    if record is not None:  # the private cluster (no Docker here): its postmaster is gone
        assert record["admin_url"] == server.admin_url
        assert not pid_alive(int(record["pid"]))
        _cleanup_cluster_dir(tmp_path)
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(server.admin_url, connect_timeout=2).close()
