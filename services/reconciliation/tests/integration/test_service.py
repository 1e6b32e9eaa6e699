"""The service's process and database: `python -m reconciliation migrate` and `serve` (gRPC health,
reports, the capture running inside it), settings that fail naming their variable, and the
constraints the tables enforce themselves."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from paykit.devstack.fixtures import create_fresh_database, drop_database, unique_name, wait_until
from paykit.devstack.postgres import PostgresServer
from paykit.reconciliation.v1 import reconciliation_pb2 as pb
from paykit.reconciliation.v1 import reconciliation_pb2_grpc
from reconciliation.settings import ReconciliationSettings
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.exc import IntegrityError, InternalError

from .support import payment_succeeded, produce

ENTRY_TIMEOUT_S = 60
SERVICE_READY_TIMEOUT_S = 60.0
RPC_TIMEOUT_S = 10.0
TABLES = {
    "internal_records", "statement_files", "statement_lines", "recon_runs", "discrepancies",
    "discrepancy_audit", "suspense_items", "outbox", "inbox", "idempotency_keys", "alembic_version",
}  # fmt: skip


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    clean.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    return subprocess.run(
        [sys.executable, "-m", "reconciliation", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=ENTRY_TIMEOUT_S,
        check=False,
    )


def test_migrate_creates_every_table(shared_postgres: PostgresServer) -> None:
    name, url = create_fresh_database(shared_postgres, "reconmig_")
    try:
        done = run({"RECON_DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "migrate")
        assert done.returncode == 0, done.stderr
        again = run({"RECON_DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "migrate")
        assert again.returncode == 0, again.stderr
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
        try:
            assert set(inspect(engine).get_table_names()) == TABLES
        finally:
            engine.dispose()
    finally:
        drop_database(shared_postgres, name)


def test_missing_or_bad_settings_stop_with_the_variable_names() -> None:
    done = run({}, "migrate")
    assert done.returncode == 2
    assert "RECON_DATABASE_URL is required" in done.stderr
    assert "KAFKA_BOOTSTRAP_SERVERS is required" in done.stderr
    bad = run(
        {
            "RECON_DATABASE_URL": "postgresql://u:hunter2@db/x",
            "KAFKA_BOOTSTRAP_SERVERS": "k:9092",
            "RECON_CHANNEL_TIMEZONES": "alipay=Asia/Shanghai,card=Mars/Olympus,wechatpay",
            "RECON_SUSPENSE_WINDOW_S": "-5",
        },
        "migrate",
    )
    assert bad.returncode == 2
    assert "RECON_CHANNEL_TIMEZONES: 'Mars/Olympus' (for card) is not an IANA time zone" in bad.stderr
    assert "RECON_CHANNEL_TIMEZONES: 'wechatpay' is not <channel>=<IANA time zone>" in bad.stderr
    assert "RECON_SUSPENSE_WINDOW_S must be 0..21600, got -5" in bad.stderr
    assert "hunter2" not in bad.stderr
    capture = subprocess.run(
        [sys.executable, "-m", "reconciliation.capture", "serve"],
        env={
            k: v
            for k, v in os.environ.items()
            if not k.startswith("RECON_") and k != "KAFKA_BOOTSTRAP_SERVERS"
        },
        capture_output=True,
        text=True,
        timeout=ENTRY_TIMEOUT_S,
        check=False,
    )
    assert capture.returncode == 2 and "RECON_DATABASE_URL is required" in capture.stderr


def test_each_channel_closes_its_day_at_its_own_midnight() -> None:
    settings = ReconciliationSettings(
        database_url="unused",
        kafka_bootstrap_servers="unused",
        channel_timezones="alipay=Asia/Shanghai,card=UTC,us_acquirer=America/New_York",
    )
    days = settings.business_days()
    assert days.day_of("alipay", datetime(2026, 3, 1, 15, 59, 59, tzinfo=UTC)) == date(2026, 3, 1)
    assert days.day_of("alipay", datetime(2026, 3, 1, 16, 0, 0, tzinfo=UTC)) == date(2026, 3, 2)
    assert days.day_of("unlisted", datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)) == date(2026, 3, 1)
    # The matcher's cut-off (MatchConfig.cutoff_offset_s): seconds from UTC midnight to the
    # channel's; across a daylight-saving change it follows the day.
    assert settings.match_config("alipay", date(2026, 3, 1)).cutoff_offset_s == -8 * 3600
    assert settings.match_config("card", date(2026, 3, 1)).cutoff_offset_s == 0
    assert settings.match_config("us_acquirer", date(2026, 3, 7)).cutoff_offset_s == 5 * 3600
    assert settings.match_config("us_acquirer", date(2026, 3, 8)).cutoff_offset_s == 4 * 3600
    assert settings.match_config("alipay", date(2026, 3, 1)).suspense_window_s == settings.suspense_window_s


# -- what the tables refuse by themselves ---------------------------------------------------

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


ADD_FILE = text(
    "INSERT INTO statement_files (file_id, channel, business_day, format, filename, sha256, "
    "account, line_count, imported_at) "
    "VALUES (:f, 'alipay', :d, 'alipay_trade_bill', :f, :s, 'acct', 0, :t)"
)
ADD_DISCREPANCY = text(
    "INSERT INTO discrepancies (discrepancy_id, run_id, channel, business_day, type, side, kind, "
    "our_id, currency, internal_amount_minor, status, created_at, updated_at) "
    "VALUES ('dsc_audit', 'run_audit', 'alipay', '2026-03-01', 'INTERNAL_ONLY', 'INTERNAL', "
    "'PAYMENT', 'pay_x', 'CNY', 100, 'OPEN', :t, :t)"
)


def add_file(engine: Engine, file_id: str, sha: str, day: date = date(2026, 3, 1)) -> None:
    with engine.begin() as conn:
        conn.execute(ADD_FILE, {"f": file_id, "d": day, "s": sha, "t": NOW})


def test_a_statement_file_is_stored_once_by_hash_and_one_is_current_per_channel_and_day(
    recon_engine: Engine,
) -> None:
    first, second = "a" * 64, "b" * 64
    add_file(recon_engine, "stm_first", first)
    with pytest.raises(IntegrityError, match="statement_files_sha256"):
        add_file(recon_engine, "stm_same_bytes", first)
    # A different file for the same channel and day is refused while the first is current...
    with pytest.raises(IntegrityError, match="statement_files_current"):
        add_file(recon_engine, "stm_second", second)
    with (
        pytest.raises(IntegrityError, match="statement_files_replaced_together"),
        recon_engine.begin() as conn,
    ):
        conn.execute(
            text("UPDATE statement_files SET replaced_at = :t WHERE file_id = 'stm_first'"), {"t": NOW}
        )
    # ...and taken when it explicitly replaces the first, which is kept, marked, for the audit:
    # in one transaction, the old one marked first (so two are never current at once).
    with recon_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE statement_files SET replaced_at = :t, replaced_by = 'stm_second', "
                "replace_reason = 'the channel corrected its bill' WHERE file_id = 'stm_first'"
            ),
            {"t": NOW},
        )
        conn.execute(ADD_FILE, {"f": "stm_second", "d": date(2026, 3, 1), "s": second, "t": NOW})
    with recon_engine.connect() as conn:
        current = conn.execute(
            text("SELECT file_id FROM statement_files WHERE channel = 'alipay' AND replaced_at IS NULL")
        ).scalars()
        assert list(current) == ["stm_second"]


def test_the_discrepancy_audit_trail_is_append_only(recon_engine: Engine) -> None:
    with recon_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO recon_runs (run_id, channel, business_day, status, started_at, finished_at) "
                "VALUES ('run_audit', 'alipay', '2026-03-01', 'SUCCEEDED', :t, :t)"
            ),
            {"t": NOW},
        )
        conn.execute(ADD_DISCREPANCY, {"t": NOW})
        conn.execute(
            text(
                "INSERT INTO discrepancy_audit (discrepancy_id, at, action, to_status, actor, reason) "
                "VALUES ('dsc_audit', :t, 'found', 'OPEN', 'reconciliation', 'run run_audit')"
            ),
            {"t": NOW},
        )
    for statement in ("UPDATE discrepancy_audit SET actor = 'someone else'", "DELETE FROM discrepancy_audit"):
        with pytest.raises(InternalError, match="append-only"), recon_engine.begin() as conn:
            conn.execute(text(statement))
    # A resolved discrepancy must say how and by whom.
    with pytest.raises(IntegrityError, match="discrepancies_resolved_fields"), recon_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE discrepancies SET status = 'RESOLVED', resolved_at = :t "
                "WHERE discrepancy_id = 'dsc_audit'"
            ),
            {"t": NOW},
        )


# -- the service process -------------------------------------------------------------------


@pytest.fixture
def service(
    recon_database: str, shared_kafka_bootstrap: str, event_topics: tuple[str, str], tmp_path: Path
) -> Iterator[dict[str, int]]:
    """`python -m reconciliation serve` on a free port, its capture running in process."""
    ready_file = tmp_path / "reconciliation.ready.json"
    log_file = tmp_path / "reconciliation.log"
    env = {
        **os.environ,
        "RECON_DATABASE_URL": recon_database,
        "KAFKA_BOOTSTRAP_SERVERS": shared_kafka_bootstrap,
        "RECON_GRPC_LISTEN": "127.0.0.1:0",
        "RECON_CAPTURE_TOPICS": ",".join(event_topics),
        "RECON_CAPTURE_GROUP": unique_name("recontest-service-"),
        "RECON_CAPTURE_DATA_DIR": str(tmp_path / "faust"),
        # No channel-gateway here: a run must fail fast and say so (nothing listens on port 9).
        "CHANNEL_GATEWAY_TARGET": "127.0.0.1:9",
        "RECON_WORK_DIR": str(tmp_path / "work"),
        "METRICS_PORT": "0",
        "READY_FILE": str(ready_file),
        "LOG_LEVEL": "INFO",
    }
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciliation", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + SERVICE_READY_TIMEOUT_S
        while not ready_file.exists():
            assert process.poll() is None, f"exited {process.returncode}: {log_file.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not ready: {log_file.read_text()[-3000:]}"
            time.sleep(0.1)
        info = json.loads(ready_file.read_text())
        yield info
        process.send_signal(signal.SIGTERM)
        assert process.wait(ENTRY_TIMEOUT_S) == 0, log_file.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(ENTRY_TIMEOUT_S)


def test_the_service_serves_health_and_reports_and_captures_in_process(
    service: dict[str, int], recon_engine: Engine, shared_kafka_bootstrap: str, event_topics: tuple[str, str]
) -> None:
    target = f"127.0.0.1:{service['grpc_port']}"
    assert "metrics_port" in service and service.get("capture") == "in_process"

    async def calls() -> tuple[int, grpc.aio.AioRpcError, grpc.aio.AioRpcError]:
        async with grpc.aio.insecure_channel(target) as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="paykit.reconciliation.v1.ReconciliationService"),
                timeout=RPC_TIMEOUT_S,
            )
            stub = reconciliation_pb2_grpc.ReconciliationServiceStub(channel)
            errors = []
            for call in (
                stub.GetReport(pb.GetReportRequest(run_id="run_nobody_ran"), timeout=RPC_TIMEOUT_S),
                stub.RunReconciliation(
                    pb.RunReconciliationRequest(channel="alipay", business_day="2026-03-01"),
                    timeout=RPC_TIMEOUT_S,
                ),
            ):
                try:
                    await call
                except grpc.aio.AioRpcError as exc:
                    errors.append(exc)
            return health.status, errors[0], errors[1]

    status, not_found, no_gateway = asyncio.run(calls())
    assert status == health_pb2.HealthCheckResponse.SERVING
    assert not_found.code() is grpc.StatusCode.NOT_FOUND
    assert not_found.details() == "reconciliation run 'run_nobody_ran' not found"
    assert no_gateway.code() is grpc.StatusCode.UNAVAILABLE
    assert "channel-gateway: alipay's statement of 2026-03-01" in no_gateway.details()
    with recon_engine.connect() as conn:
        failed = conn.execute(
            text(
                "SELECT status, error FROM recon_runs WHERE channel = 'alipay' "
                "AND business_day = '2026-03-01' ORDER BY started_at DESC LIMIT 1"
            )
        ).one()
    assert failed.status == "FAILED" and "channel-gateway" in failed.error

    # The capture runs inside the service (RECON_CAPTURE_IN_PROCESS defaults to true).
    paid = payment_succeeded(event_topics[0], at=datetime(2026, 3, 11, 8, 0, tzinfo=UTC))
    produce(shared_kafka_bootstrap, [paid])

    def captured() -> bool:
        with recon_engine.connect() as conn:
            found = conn.execute(
                text("SELECT count(*) FROM internal_records WHERE our_id = :p"), {"p": paid.aggregate_id}
            )
            return found.scalar_one() == 1

    wait_until(captured, SERVICE_READY_TIMEOUT_S, "the in-process capture to record the payment")
