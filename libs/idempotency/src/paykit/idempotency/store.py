"""Claiming, completing, releasing and expiring keys in idempotency_keys (blocking SQL).

Every method is one short transaction; asyncio callers run them through
paykit.db.run_blocking. Times come from the database clock (now()), so all
replicas of a service agree on expiry and staleness whatever their own clocks say.
"""

from __future__ import annotations

import secrets
from contextlib import AbstractContextManager
from datetime import timedelta

from paykit.errors import invariant
from paykit.idempotency.claims import Busy, Claimed, ClaimOutcome, Conflict, Decision, Replay, decide
from paykit.idempotency.schema import REQUEST_HASH_BYTES, KeyState, idempotency_keys
from sqlalchemy import Engine, Interval, bindparam, delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

Database = Engine | sessionmaker[Session]

# A row can vanish between our INSERT and our SELECT (its claimant released it
# after an error, or the janitor deleted it); claiming again then succeeds, but
# bound the loop all the same. Past the bound the caller polls as if busy.
MAX_CLAIM_ATTEMPTS = 3
CLAIM_TOKEN_BYTES = 16

_t = idempotency_keys
_now = func.now()
_PK = (_t.c.scope == bindparam("b_scope")) & (_t.c.key == bindparam("b_key"))
_OWNED = _PK & (_t.c.claim_token == bindparam("b_token")) & (_t.c.state == KeyState.IN_PROGRESS.value)

# Hot statements are built once and executed with parameters (as the services'
# repositories do): no statement construction or cache-key work per call.
_CLAIM = (
    insert(_t)
    .values(
        scope=bindparam("b_scope"),
        key=bindparam("b_key"),
        request_hash=bindparam("b_hash"),
        state=KeyState.IN_PROGRESS.value,
        claim_token=bindparam("b_token"),
        created_at=_now,
        expires_at=_now + bindparam("b_ttl", type_=Interval),
        claimed_until=_now + bindparam("b_timeout", type_=Interval),
    )
    # The primary key decides who claims, not a prior SELECT: of two
    # concurrent first calls exactly one inserts (STYLE rule 2).
    .on_conflict_do_nothing(index_elements=[_t.c.scope, _t.c.key])
    .returning(_t.c.claim_token)
)
_LOCK = (
    select(
        _t.c.state,
        _t.c.request_hash,
        _t.c.response,
        (_t.c.expires_at < _now).label("expired"),
        (_t.c.claimed_until < _now).label("stale"),
    )
    .where(_PK)
    # Held until the decision is written, so two callers cannot both take over one row.
    .with_for_update()
)
_TAKE_OVER = (
    update(_t)
    .where(_PK)
    .values(
        request_hash=bindparam("b_hash"),
        state=KeyState.IN_PROGRESS.value,
        claim_token=bindparam("b_token"),
        response=None,
        created_at=_now,
        expires_at=_now + bindparam("b_ttl", type_=Interval),
        claimed_until=_now + bindparam("b_timeout", type_=Interval),
    )
)
_COMPLETE = (
    update(_t)
    .where(_OWNED)
    .values(
        state=KeyState.COMPLETED.value,
        response=bindparam("b_response"),
        expires_at=_now + bindparam("b_ttl", type_=Interval),
    )
    .returning(_t.c.key)
)
_STORED = select(_t.c.state, _t.c.request_hash, _t.c.response).where(_PK)
_RELEASE = delete(_t).where(_OWNED)
# Expired completed rows, and expired claims nobody holds any more; SKIP LOCKED
# so the janitor never waits behind (or blocks) a request taking a row over.
_EXPIRED_BATCH = (
    select(_t.c.scope, _t.c.key)
    .where(
        (_t.c.expires_at < _now) & ((_t.c.state == KeyState.COMPLETED.value) | (_t.c.claimed_until < _now))
    )
    .limit(bindparam("b_limit"))
    .with_for_update(skip_locked=True)
)
_DELETE_EXPIRED = delete(_t).where(tuple_(_t.c.scope, _t.c.key).in_(_EXPIRED_BATCH)).returning(_t.c.key)


class IdempotencyStore:
    """The idempotency_keys table of one service database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def _transaction(self) -> AbstractContextManager[Connection | Session]:
        # Both commit on a clean exit and roll back on an exception.
        return self._database.begin()

    def claim(
        self, scope: str, key: str, request_hash: bytes, ttl_s: float, in_progress_timeout_s: float
    ) -> ClaimOutcome:
        """Claim `key` for this request, or say what to do instead."""
        invariant(len(request_hash) == REQUEST_HASH_BYTES, "request_hash must be a sha256 digest")
        token = secrets.token_hex(CLAIM_TOKEN_BYTES)
        params = {
            "b_scope": scope,
            "b_key": key,
            "b_hash": request_hash,
            "b_token": token,
            "b_ttl": timedelta(seconds=ttl_s),
            "b_timeout": timedelta(seconds=in_progress_timeout_s),
        }
        for _ in range(MAX_CLAIM_ATTEMPTS):
            with self._transaction() as tx:
                if tx.execute(_CLAIM, params).first() is not None:
                    return Claimed(token=token, taken_over=False)
                row = tx.execute(_LOCK, params).first()
                if row is None:
                    continue  # released or expired away since our INSERT: insert again
                decision = decide(
                    KeyState(row.state), bytes(row.request_hash) == request_hash, row.expired, row.stale
                )
                match decision:
                    case Decision.TAKE_OVER:
                        tx.execute(_TAKE_OVER, params)
                        return Claimed(token=token, taken_over=True)
                    case Decision.REPLAY:
                        invariant(row.response is not None, "a COMPLETED key must hold its response")
                        return Replay(bytes(row.response))
                    case Decision.CONFLICT:
                        return Conflict()
                    case Decision.BUSY:
                        return Busy()
        return Busy()

    def complete(
        self, scope: str, key: str, token: str, request_hash: bytes, response: bytes, ttl_s: float
    ) -> bytes:
        """Store the response under our claim; return the bytes every caller of this key gets.

        Normally `response` itself. If our claim was taken over meanwhile (we
        ran past the in-progress timeout) and the new claimant already stored
        a response for the same request, that one is returned instead, so all
        callers still see one answer.
        """
        params = {
            "b_scope": scope,
            "b_key": key,
            "b_token": token,
            "b_response": response,
            "b_ttl": timedelta(seconds=ttl_s),
        }
        with self._transaction() as tx:
            if tx.execute(_COMPLETE, params).first() is not None:
                return response
            row = tx.execute(_STORED, params).first()
        if (
            row is not None
            and row.state == KeyState.COMPLETED.value
            and bytes(row.request_hash) == request_hash
            and row.response is not None
        ):
            return bytes(row.response)
        return response

    def release(self, scope: str, key: str, token: str) -> None:
        """Forget our claim (the handler failed), so a retry runs the handler again."""
        with self._transaction() as tx:
            tx.execute(_RELEASE, {"b_scope": scope, "b_key": key, "b_token": token})

    def delete_expired(self, limit: int) -> int:
        """Delete up to `limit` expired rows; return how many went."""
        with self._transaction() as tx:
            return len(tx.execute(_DELETE_EXPIRED, {"b_limit": limit}).all())
