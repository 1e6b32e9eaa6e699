"""make bench-ledger: journal entries per second through accounting's posting path,
against raw batched INSERTs of the same rows, measured in the same run.

raw      ENTRIES capture-shaped entries (5 lines each) INSERTed straight into
         journal_entries and journal_lines with executemany (insertmanyvalues),
         RAW_BATCH entries per transaction: the floor the database sets.
service  ENTRIES captures built by posting_rules.capture and posted by
         posting.post() in LedgerUnitOfWork transactions of SERVICE_BATCH entries,
         each committed: accounts, entries deduplicated by event id, balance moves
         under the must-not-go-negative guard, lines, and an outbox event per entry.

Each path writes into its own fresh, migrated database on one Postgres: a private
cluster under .run/bench-ledger (test settings: no fsync), or PAYKIT_POSTGRES_URL.
After the run the service's ledger is checked whole with the `ledger check` SQL:
trial balance zero per currency, every balance equal to the sum of its lines.
Writes bench/results/ledger.json.
"""

from __future__ import annotations

import json
import os
import random
import resource
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from accounting.adapters.tables import accounts, journal_entries, journal_lines
from accounting.bootstrap import migrate
from accounting.domain import posting_rules as rules
from accounting.domain.entries import JournalEntry
from accounting.domain.fees import FeeSchedule
from accounting.domain.posting_rules import Captured
from accounting.entrypoints.ledger_cli import Report, check_ledger
from accounting.service_layer.posting import post
from accounting.service_layer.unit_of_work import LedgerUnitOfWork
from paykit.db import create_engine_for, session_factory
from paykit.devstack.fixtures import claim_run_dir, create_fresh_database, drop_database
from paykit.devstack.postgres import ENV_POSTGRES_URL, PostgresServer, acquire_postgres
from paykit.ids import IdKind, new_id
from paykit.money import Money
from sqlalchemy import Engine

ENTRIES = int(os.environ.get("ENTRIES", "100000"))
SERVICE_BATCH = int(os.environ.get("BATCH", "500"))
RAW_BATCH = 1000
LINES_PER_ENTRY = 5
MERCHANTS = tuple(f"bench-m{i}" for i in range(8))
CHANNELS = ("simulator", "simulator_b", "simulator_c")
CURRENCY = "CNY"
# Large enough that both fees are positive: every capture has its 5 lines.
AMOUNT_MINOR = (1_000, 1_000_000)
TARGET_ENTRIES_PER_S = 5_000
FEES = FeeSchedule()
SEED = 7
# Event ids of this run: "evt_" + 26 characters, like paykit.ids'.
RUN_PREFIX = secrets.token_hex(8)
ROOT = Path(__file__).resolve().parents[1]


def captures(count: int, first: int, rng: random.Random) -> list[JournalEntry]:
    """`count` capture entries as the consumer builds them: posting_rules.capture, a new
    entry id each. The event id is input (it comes in the envelope): made up here, as long
    as a real one."""
    at = datetime.now(UTC)
    entries = []
    for n in range(first, first + count):
        fact = Captured(
            event_id=f"evt_{RUN_PREFIX}{n:010d}",
            payment_id=f"pay_bench_{n}",
            merchant_id=MERCHANTS[n % len(MERCHANTS)],
            channel=CHANNELS[n % len(CHANNELS)],
            amount=Money(rng.randint(*AMOUNT_MINOR), CURRENCY),
            at=at,
        )
        entry, _ = rules.capture(fact, FEES, new_id(IdKind.JOURNAL_ENTRY))
        entries.append(entry)
    return entries


def run_service(engine: Engine) -> float:
    """Entries per second through posting.post(), SERVICE_BATCH per committed unit of work."""
    sessions = session_factory(engine)
    rng = random.Random(SEED)
    started = time.perf_counter()
    for first in range(0, ENTRIES, SERVICE_BATCH):
        batch = captures(min(SERVICE_BATCH, ENTRIES - first), first, rng)
        with LedgerUnitOfWork(sessions, lambda: None) as uow:
            posted = post(uow, batch)
            uow.commit()
        if len(posted) != len(batch):
            raise RuntimeError(f"posted {len(posted)} of a batch of {len(batch)}")
    return ENTRIES / (time.perf_counter() - started)


def raw_rows(first: int, count: int, rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows a capture writes (entry + 5 lines), built the cheapest way."""
    at = datetime.now(UTC)
    entries, lines = [], []
    for n in range(first, first + count):
        merchant, channel = MERCHANTS[n % len(MERCHANTS)], CHANNELS[n % len(CHANNELS)]
        amount = rng.randint(*AMOUNT_MINOR)
        merchant_fee, channel_fee = (amount * 60 + 5_000) // 10_000, (amount * 38 + 5_000) // 10_000
        entry_id = f"jnl_raw_{n}"
        entries.append(
            {
                "entry_id": entry_id,
                "event_id": f"evt_raw_{n}",
                "kind": "capture",
                "reference": f"pay_raw_{n}",
                "description": f"payment pay_raw_{n} captured at {channel}",
                "actor": "",
                "reason": "",
                "reverses_entry_id": None,
                "created_at": at,
            }
        )
        clearing = f"asset:channel_clearing:{channel}:{CURRENCY}"
        for account_id, side, minor in (
            (clearing, "DEBIT", amount),
            (f"liability:merchant_payable:{merchant}:{CURRENCY}:pending", "CREDIT", amount - merchant_fee),
            (f"income:fee_revenue:{CURRENCY}", "CREDIT", merchant_fee),
            (f"expense:channel_fees:{channel}:{CURRENCY}", "DEBIT", channel_fee),
            (clearing, "CREDIT", channel_fee),
        ):
            lines.append(
                {
                    "entry_id": entry_id,
                    "account_id": account_id,
                    "side": side,
                    "amount_minor": minor,
                    "currency": CURRENCY,
                }
            )
    return entries, lines


def run_raw(engine: Engine) -> float:
    """Entries per second, INSERTed straight into the journal tables, RAW_BATCH per transaction."""
    sample = captures(len(MERCHANTS) * len(CHANNELS), 0, random.Random(SEED))
    chart = {a.account_id: a for e in sample for a in e.accounts}
    with engine.begin() as conn:
        conn.execute(
            accounts.insert(),
            [
                {
                    "account_id": a.account_id,
                    "type": a.type.value,
                    "currency": a.currency,
                    "owner": a.owner,
                    "normal_side": a.normal_side.value,
                    "must_not_go_negative": a.must_not_go_negative,
                }
                for a in chart.values()
            ],
        )
    rng = random.Random(SEED)
    started = time.perf_counter()
    for first in range(0, ENTRIES, RAW_BATCH):
        entry_rows, line_rows = raw_rows(first, min(RAW_BATCH, ENTRIES - first), rng)
        with engine.begin() as conn:
            conn.execute(journal_entries.insert(), entry_rows)
            conn.execute(journal_lines.insert(), line_rows)
    return ENTRIES / (time.perf_counter() - started)


def verify(engine: Engine) -> tuple[Report, float]:
    """The whole ledger checked as `ledger check` does, and how long that took."""
    started = time.perf_counter()
    with engine.connect() as conn:
        snapshot = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with snapshot.begin():
            report = check_ledger(snapshot)
    if (report.entries, report.lines) != (ENTRIES, ENTRIES * LINES_PER_ENTRY):
        raise RuntimeError(f"expected {ENTRIES} entries, found {report.entries} with {report.lines} lines")
    return report, time.perf_counter() - started


@contextmanager
def fresh_database(server: PostgresServer, prefix: str) -> Iterator[Engine]:
    name, url = create_fresh_database(server, prefix)
    try:
        migrate(url)
        engine = create_engine_for(url, application_name="bench-ledger", pool_size=2)
        try:
            yield engine
        finally:
            engine.dispose()
    finally:
        drop_database(server, name)


def measure(server: PostgresServer) -> dict[str, Any]:
    with fresh_database(server, "bench_ledger_raw_") as engine:
        raw_per_s = run_raw(engine)
    with fresh_database(server, "bench_ledger_service_") as engine:
        service_per_s = run_service(engine)
        report, check_s = verify(engine)
    trial = next(check for check in report.checks if check.title.startswith("trial balance"))
    return {
        "entries": ENTRIES,
        "entries_per_s": round(service_per_s, 1),
        "raw_insert_per_s": round(raw_per_s, 1),
        "ratio": round(service_per_s / raw_per_s, 3),
        "batch_size": SERVICE_BATCH,
        "raw_batch_size": RAW_BATCH,
        "lines_per_entry": LINES_PER_ENTRY,
        "target_entries_per_s": TARGET_ENTRIES_PER_S,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "trial_balance_zero": trial.ok,
        "ledger_check_sound": report.sound,
        "ledger_check_s": round(check_s, 2),
        "postgres": ENV_POSTGRES_URL
        if os.environ.get(ENV_POSTGRES_URL)
        else "private cluster (.run/bench-ledger)",
    }


def with_postgres(fn: Callable[[PostgresServer], dict[str, Any]]) -> dict[str, Any]:
    run_dir, release = claim_run_dir("bench-ledger")
    try:
        server, stop = acquire_postgres(run_dir)
        try:
            return fn(server)
        finally:
            stop()
    finally:
        release()


def main() -> int:
    if ENTRIES < 1:
        print(f"ENTRIES must be at least 1, got {ENTRIES}", file=sys.stderr)
        return 2
    figures = with_postgres(measure)
    out = ROOT / "bench" / "results" / "ledger.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    for key, value in figures.items():
        print(f"{key:<22} {value}")
    print(f"written to {out.relative_to(ROOT)}")
    if not (figures["trial_balance_zero"] and figures["ledger_check_sound"]):
        print("the ledger posted by the service is NOT sound", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
