"""The table's rules against real PostgreSQL: claims, take-overs, the janitor, the migration."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from paykit.idempotency import IdempotencyJanitor
from paykit.idempotency.claims import Busy, Claimed, Conflict, Replay
from paykit.idempotency.schema import metadata
from paykit.idempotency.store import IdempotencyStore
from sqlalchemy import Engine, text
from sqlalchemy.orm import sessionmaker

SCOPE = "/paykit.order.v1.OrderService/CreateOrder"
HASH_A = hashlib.sha256(b"request a").digest()
HASH_B = hashlib.sha256(b"request b").digest()
TTL_S = 60.0
TIMEOUT_S = 10.0


def _make_stale(engine: Engine, key: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE idempotency_keys SET claimed_until = now() - interval '1 second' WHERE key = :k"),
            {"k": key},
        )


def _keys(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT key FROM idempotency_keys ORDER BY key")).scalars())


@pytest.mark.parametrize("use_sessionmaker", [False, True], ids=["engine", "sessionmaker"])
def test_claim_replay_and_conflict(
    idem_engine: Engine, idem_clean_table: None, use_sessionmaker: bool
) -> None:
    store = IdempotencyStore(sessionmaker(idem_engine) if use_sessionmaker else idem_engine)
    claim = store.claim(SCOPE, "k", HASH_A, TTL_S, TIMEOUT_S)
    assert isinstance(claim, Claimed)
    assert not claim.taken_over
    assert store.claim(SCOPE, "k", HASH_A, TTL_S, TIMEOUT_S) == Busy()
    assert store.claim(SCOPE, "k", HASH_B, TTL_S, TIMEOUT_S) == Conflict()
    assert store.complete(SCOPE, "k", claim.token, HASH_A, b"\x00response", TTL_S) == b"\x00response"
    assert store.claim(SCOPE, "k", HASH_A, TTL_S, TIMEOUT_S) == Replay(b"\x00response")
    assert store.claim(SCOPE, "k", HASH_B, TTL_S, TIMEOUT_S) == Conflict()


def test_a_slow_claimant_whose_claim_was_taken_over_cannot_complete_or_release_it(
    idem_engine: Engine, idem_clean_table: None
) -> None:
    store = IdempotencyStore(idem_engine)
    slow = store.claim(SCOPE, "k", HASH_A, TTL_S, TIMEOUT_S)
    assert isinstance(slow, Claimed)
    _make_stale(idem_engine, "k")
    fresh = store.claim(SCOPE, "k", HASH_A, TTL_S, TIMEOUT_S)
    assert isinstance(fresh, Claimed)
    assert fresh.taken_over

    # The slow one fails: its release must not delete the new claim.
    store.release(SCOPE, "k", slow.token)
    assert _keys(idem_engine) == ["k"]

    # Both finish: whoever completes second gets the stored answer, so every caller sees one response.
    assert store.complete(SCOPE, "k", fresh.token, HASH_A, b"fresh", TTL_S) == b"fresh"
    assert store.complete(SCOPE, "k", slow.token, HASH_A, b"slow", TTL_S) == b"fresh"
    assert store.claim(SCOPE, "k", HASH_A, TTL_S, TIMEOUT_S) == Replay(b"fresh")


def test_a_stale_claim_for_another_request_stays_a_conflict_until_it_expires(
    idem_engine: Engine, idem_clean_table: None
) -> None:
    store = IdempotencyStore(idem_engine)
    assert isinstance(store.claim(SCOPE, "k", HASH_A, TTL_S, TIMEOUT_S), Claimed)
    _make_stale(idem_engine, "k")
    assert store.claim(SCOPE, "k", HASH_B, TTL_S, TIMEOUT_S) == Conflict()
    with idem_engine.begin() as conn:
        conn.execute(text("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'"))
    taken = store.claim(SCOPE, "k", HASH_B, TTL_S, TIMEOUT_S)
    assert isinstance(taken, Claimed)
    assert taken.taken_over


def _insert(conn: Any, key: str, state: str, expires: str, claimed_until: str) -> None:
    conn.execute(
        text(
            "INSERT INTO idempotency_keys (scope, key, request_hash, state, claim_token, response, "
            f"expires_at, claimed_until) VALUES (:scope, :key, :hash, :state, 't', :response, "
            f"now() + interval '{expires}', now() + interval '{claimed_until}')"
        ),
        {
            "scope": SCOPE,
            "key": key,
            "hash": HASH_A,
            "state": state,
            "response": b"r" if state == "COMPLETED" else None,
        },
    )


def test_janitor_deletes_only_expired_rows_in_bounded_batches(
    idem_engine: Engine, idem_clean_table: None
) -> None:
    with idem_engine.begin() as conn:
        for n in range(5):
            _insert(conn, f"expired-{n}", "COMPLETED", "-1 second", "-1 hour")
        _insert(conn, "live", "COMPLETED", "1 hour", "-1 hour")
        _insert(conn, "abandoned", "IN_PROGRESS", "-1 second", "-1 second")
        # Expired, but its claimant still runs: the claim protects it until claimed_until.
        _insert(conn, "running", "IN_PROGRESS", "-1 second", "1 hour")

    janitor = IdempotencyJanitor(idem_engine, batch_size=2)
    batches = []
    while batch := asyncio.run(janitor.tick()):
        batches.append(batch)
    assert batches == [2, 2, 2]
    assert _keys(idem_engine) == ["live", "running"]


def test_janitor_runs_as_a_periodic_task(idem_engine: Engine, idem_clean_table: None) -> None:
    with idem_engine.begin() as conn:
        _insert(conn, "expired", "COMPLETED", "-1 second", "-1 hour")

    async def scenario() -> None:
        task = IdempotencyJanitor(idem_engine).periodic_task(interval_s=60.0)
        await task.start()
        for _ in range(100):
            if not _keys(idem_engine):
                break
            await asyncio.sleep(0.05)
        await task.stop()

    asyncio.run(scenario())
    assert _keys(idem_engine) == []


def test_the_migration_creates_what_the_runtime_table_declares(idem_engine: Engine) -> None:
    with idem_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
