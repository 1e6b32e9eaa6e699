from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

# Each service process runs its gRPC handlers, outbox relay and consumer on a
# bounded thread pool; the pool is sized to that, not to the request rate.
DEFAULT_POOL_SIZE = 20
DEFAULT_MAX_OVERFLOW = 10
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
        pool_pre_ping=True,
        connect_args={
            "application_name": application_name,
            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        },
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    # Domain objects are built from rows before commit; nothing reads an
    # expired ORM attribute after it, so expiring on commit only costs reloads.
    return sessionmaker(engine, expire_on_commit=False)
