"""Migration 0002 on a database that already holds orders, and back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from order_service.bootstrap import MIGRATIONS
from paykit.db import create_engine_for, run_migrations
from paykit.db.migrations import alembic_config
from paykit.devstack.fixtures import create_fresh_database, drop_database
from paykit.devstack.postgres import PostgresServer
from sqlalchemy import Engine, inspect, text

INSERT_0001_ORDER = """
INSERT INTO orders (order_id, merchant_id, merchant_order_no, amount_minor, currency, subject,
                    status, pay_attempts, payment_id, created_at, expires_at)
VALUES ('ord_old', 'mch', 'M-old', 1999, 'CNY', 'before 0002', 'PAYING', 1, 'pay_1', now(), now())
"""


@pytest.fixture
def database(order_postgres: PostgresServer) -> Iterator[tuple[str, Engine]]:
    name, url = create_fresh_database(order_postgres, "ordermigr_")
    engine = create_engine_for(url, application_name="ordertest-migrations", pool_size=1)
    try:
        yield url, engine
    finally:
        engine.dispose()
        drop_database(order_postgres, name)


def test_0002_keeps_existing_orders_and_downgrades_cleanly(database: tuple[str, Engine]) -> None:
    url, engine = database
    run_migrations(MIGRATIONS, url, "0001")
    with engine.begin() as conn:
        conn.execute(text(INSERT_0001_ORDER))

    run_migrations(MIGRATIONS, url, "0002")
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT refunded_minor, close_attempts, pay_method, next_close_at FROM orders")
        ).one()
    assert tuple(row) == (0, 0, None, None)
    indexes = {index["name"] for index in inspect(engine).get_indexes("orders")}
    assert "orders_open_by_expiry" in indexes

    command.downgrade(alembic_config(MIGRATIONS, url), "0001")
    engine.dispose()  # forget the cached column lists
    assert "refunded_minor" not in {c["name"] for c in inspect(engine).get_columns("orders")}
    assert not inspect(engine).has_table("order_refunds")

    run_migrations(MIGRATIONS, url, "head")  # and up again
    assert inspect(engine).has_table("order_refunds")
