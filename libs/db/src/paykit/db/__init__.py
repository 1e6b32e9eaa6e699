"""SQLAlchemy 2 engines, a unit of work with an explicit commit, and Alembic runs."""

from paykit.db.blocking import run_blocking
from paykit.db.engine import create_engine_for, session_factory
from paykit.db.migrations import run_migrations
from paykit.db.on_commit import on_commit
from paykit.db.uow import SqlUnitOfWork

__all__ = [
    "SqlUnitOfWork",
    "create_engine_for",
    "on_commit",
    "run_blocking",
    "run_migrations",
    "session_factory",
]
