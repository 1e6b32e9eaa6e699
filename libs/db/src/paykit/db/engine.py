from __future__ import annotations

from paykit.db.blocking import BLOCKING_POOL_THREADS
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

# A connection for every thread that can hold one at once: the blocking pool
# that runs request handlers, plus the outbox relay and consumer loop threads.
# Sized to its users, the pool never opens and closes overflow connections
# under load (each a fork of a Postgres backend), and never makes them wait.
BACKGROUND_DB_THREADS = 4
DEFAULT_POOL_SIZE = BLOCKING_POOL_THREADS + BACKGROUND_DB_THREADS
DEFAULT_MAX_OVERFLOW = 0
POOL_TIMEOUT_S = 10
STATEMENT_TIMEOUT_MS = 15_000


def with_driver(url: str) -> str:
    """Pin the psycopg2 driver: SQLAlchemy 2.1 maps a bare postgresql:// URL to psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def create_engine_for(url: str, *, application_name: str, pool_size: int = DEFAULT_POOL_SIZE) -> Engine:
    """An engine whose connections name the service in pg_stat_activity and time out statements."""
    return create_engine(
        with_driver(url),
        pool_size=pool_size,
        max_overflow=DEFAULT_MAX_OVERFLOW,
        pool_timeout=POOL_TIMEOUT_S,
        # No pre-ping: it is a round trip on every checkout (~15 per paid order,
        # 6-17% of a service's busy time in the e2e bench profile). On a lost
        # connection SQLAlchemy invalidates the whole pool, so after a Postgres
        # restart one transaction per process fails and is retried by its caller
        # (idempotency keys make that safe); the consumer loop retries by itself.
        pool_pre_ping=False,
        connect_args={
            "application_name": application_name,
            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        },
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    # Domain objects are built from rows before commit; nothing reads an
    # expired ORM attribute after it, so expiring on commit only costs reloads.
    return sessionmaker(engine, expire_on_commit=False)
