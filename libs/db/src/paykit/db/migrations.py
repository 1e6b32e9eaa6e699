"""Run a service's Alembic history (one per service database) from code."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from paykit.db.engine import with_driver


def alembic_config(script_location: Path, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    # Alembic reads options through ConfigParser: a literal % must be doubled.
    config.set_main_option("sqlalchemy.url", with_driver(url).replace("%", "%%"))
    return config


def run_migrations(script_location: Path, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(script_location, url), revision)


def run_env_online() -> None:
    """Body of every service's migrations/env.py: migrate the configured URL online."""
    from alembic import context
    from sqlalchemy import create_engine, pool

    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set for this Alembic run")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
