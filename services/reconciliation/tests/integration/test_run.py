"""A reconciliation run against real PostgreSQL and the real matcher (service_layer.runs and
.resolution), the channel side and the other services faked at their ports: a statement of a
test format (registered as a parser for the test), payment-core's SyncPayment and accounting's
ReleaseFunds / PostAdjustment recorded. The whole path with the real services is
tests/e2e/test_reconciliation.py."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from paykit.errors import Unavailable
from reconciliation.adapters.clients import (
    AdjustmentLine,
    DownloadedStatement,
    ReleaseOutcome,
    SyncAnswer,
    SyncOutcome,
)
from reconciliation.adapters.repository import RecordRow
from reconciliation.domain import InternalRecord, RecordKind, RecordStatus
from reconciliation.service_layer import resolution, runs
from reconciliation.service_layer.resolution import Resolver
from reconciliation.service_layer.runs import Runner
from reconciliation.service_layer.unit_of_work import UowFactory
from reconciliation.settings import ReconciliationSettings
from reconciliation.statements import PARSERS, ParsedStatement
from reconciliation.statements.base import digest
from sqlalchemy import Engine, text

CHANNEL = "testpay"
DAY = date(2026, 6, 10)
NOON = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
FORMAT = "test-lines"


def _parse(content: bytes, filename: str, channel: str, day: date) -> ParsedStatement:
    parsed = ParsedStatement(FORMAT, channel, day, filename, digest(content), "acct-1")
    for n, (txn, our_id, minor) in enumerate(json.loads(content)):
        parsed.add(
            channel=channel, business_day=day, line_no=n + 1, kind="PAYMENT", channel_txn_id=txn,
            our_id=our_id, reference=our_id, batch_id=None, amount_minor=minor, currency="CNY",
            fee_minor=None, status="SUCCEEDED", occurred_at=NOON,
        )  # fmt: skip
    return parsed


class Channel:
    """The statement channel-gateway would hand over: lines as (trade no, our id, amount)."""

    def __init__(self, lines: list[tuple[str, str, int]]) -> None:
        self.lines = lines
        self.down = False

    async def download(self, channel: str, day: date) -> DownloadedStatement:
        if self.down:
            raise Unavailable("channel-gateway: down")
        content = json.dumps(self.lines).encode()
        return DownloadedStatement("stm-x", FORMAT, f"{channel}-{day}.json", "", content)


class PaymentCore:
    def __init__(self, succeeded: set[str]) -> None:
        self.succeeded = succeeded
        self.asked: list[str] = []

    async def sync_payment(self, payment_id: str) -> SyncAnswer:
        self.asked.append(payment_id)
        if payment_id in self.succeeded:
            return SyncAnswer(SyncOutcome.SUCCEEDED, "SUCCEEDED", "ord-1")
        return SyncAnswer(SyncOutcome.NOT_FOUND)


class Ledger:
    def __init__(self) -> None:
        self.released: list[str] = []
        self.adjustments: list[tuple[str, list[AdjustmentLine]]] = []

    async def release_funds(self, payment_id: str) -> ReleaseOutcome:
        self.released.append(payment_id)
        return ReleaseOutcome.RELEASED

    async def post_adjustment(
        self, key: str, lines: list[AdjustmentLine], reason: str, reference: str
    ) -> str:
        self.adjustments.append((key, lines))
        return f"jnl_{len(self.adjustments)}"


def record(our_id: str, txn: str, minor: int) -> RecordRow:
    r = InternalRecord(
        channel=CHANNEL, business_day=DAY, kind=RecordKind.PAYMENT, our_id=our_id, reference=our_id,
        channel_txn_id=txn, amount_minor=minor, currency="CNY", fee_minor=None,
        status=RecordStatus.SUCCEEDED, occurred_at=NOON,
    )  # fmt: skip
    return RecordRow(r, "m-1", f"ord-{our_id}", f"evt-{our_id}", "payment.succeeded", {})


@pytest.fixture(autouse=True)
def test_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PARSERS, FORMAT, _parse)


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def test_a_day_is_matched_stored_resolved_and_run_again_without_duplicates(
    uow_factory: UowFactory, recon_engine: Engine, tmp_path: Path
) -> None:
    with uow_factory() as uow:
        uow.records.save_latest(
            [record("pay_ok", "T1", 10_000), record("pay_tol", "T2", 5_000), record("pay_small", "T3", 3_000),
             record("pay_big", "T7", 500), record("pay_ours_only", "T4", 800)],
            NOON,
        )  # fmt: skip
        uow.commit()
    channel = Channel(
        [("T1", "pay_ok", 10_000), ("T2", "pay_tol", 5_001), ("T3", "pay_small", 3_050),
         ("T5", "pay_lost", 2_000), ("T6", "pay_invented", 700), ("T7", "pay_big", 900)]
    )  # fmt: skip
    settings = ReconciliationSettings(
        database_url="unused", kafka_bootstrap_servers="unused", work_dir=tmp_path
    )
    runner = Runner(uow_factory, settings, channel)
    payments, ledger = PaymentCore({"pay_lost"}), Ledger()
    resolver = Resolver(uow_factory, payments, ledger, auto_adjust_max_minor=100)

    async def run_day() -> tuple[runs.Stored, dict[str, dict[str, int]]]:
        stored = await runs.run_and_store(runner, CHANNEL, DAY)
        return stored, await resolution.resolve_after_run(resolver, stored)

    stored, done = asyncio.run(run_day())
    assert stored.counts["discrepancies_new"] == 5
    assert done["resolutions"] == {
        "payment_fixed": 1, "channel_only_unknown_payment": 1, "adjusted_to_suspense": 1,
        "mismatch_above_threshold": 1,
    }  # fmt: skip
    assert sorted(ledger.released) == ["pay_ok", "pay_tol"]  # MATCHED and MATCHED_WITH_TOLERANCE
    (key, lines) = ledger.adjustments[0]
    assert [(ln.account_id, ln.debit, ln.amount_minor) for ln in lines] == [
        ("asset:channel_clearing:testpay:CNY", True, 50),
        ("liability:suspense:CNY", False, 50),
    ]
    found = {
        r.our_id: (r.type, r.status, r.resolution)
        for r in rows(recon_engine, "SELECT * FROM discrepancies WHERE channel = :c", c=CHANNEL)
    }
    assert found == {
        "pay_lost": ("CHANNEL_ONLY", "AUTO_RESOLVED", "payment_fixed"),
        "pay_invented": ("CHANNEL_ONLY", "OPEN", None),
        "pay_small": ("AMOUNT_MISMATCH", "AUTO_RESOLVED", "adjusted_to_suspense:jnl_1"),
        "pay_big": ("AMOUNT_MISMATCH", "OPEN", None),
        "pay_ours_only": ("INTERNAL_ONLY", "OPEN", None),
    }
    assert key == f"recon-adj:{_id_of(recon_engine, 'pay_small')}"
    outbox = dict(
        rows(recon_engine, "SELECT event_type, count(*) FROM outbox GROUP BY event_type")  # type: ignore[arg-type]
    )
    assert outbox["recon.discrepancy_found"] >= 5 and outbox["recon.discrepancy_resolved"] >= 2
    before = dict(outbox)

    # The same day again, same bytes: nothing new, nothing published again for what is known.
    again, _ = asyncio.run(run_day())
    assert (again.counts["discrepancies_new"], again.counts["discrepancies_known"]) == (0, 5)
    assert len(rows(recon_engine, "SELECT 1 FROM statement_files WHERE channel = :c", c=CHANNEL)) == 1
    outbox = dict(rows(recon_engine, "SELECT event_type, count(*) FROM outbox GROUP BY event_type"))  # type: ignore[arg-type]
    assert outbox["recon.discrepancy_found"] == before["recon.discrepancy_found"]

    # The channel withdraws the invented line: its bill changed (replaced, the old kept), and
    # the open discrepancy is not found again.
    channel.lines = [line for line in channel.lines if line[1] != "pay_invented"]
    third, _ = asyncio.run(run_day())
    assert third.counts["resolved_not_found_again"] == 1
    invented = rows(
        recon_engine, "SELECT status, resolution FROM discrepancies WHERE our_id = 'pay_invented'"
    )
    assert [tuple(r) for r in invented] == [("AUTO_RESOLVED", "not_found_again")]
    files = rows(
        recon_engine,
        "SELECT replaced_at IS NULL AS current FROM statement_files WHERE channel = :c",
        c=CHANNEL,
    )
    assert sorted(r.current for r in files) == [False, True]

    # A run that cannot get the statement is recorded as FAILED and raises.
    channel.down = True
    with pytest.raises(Unavailable):
        asyncio.run(run_day())
    latest = rows(
        recon_engine,
        "SELECT status, error FROM recon_runs WHERE channel = :c ORDER BY started_at DESC LIMIT 1",
        c=CHANNEL,
    )[0]
    assert latest.status == "FAILED" and "channel-gateway: down" in latest.error
    assert resolution.measure_open(uow_factory) >= 2  # the gauge's count: pay_big, pay_ours_only


def _id_of(engine: Engine, our_id: str) -> str:
    return str(rows(engine, "SELECT discrepancy_id FROM discrepancies WHERE our_id = :o", o=our_id)[0][0])
