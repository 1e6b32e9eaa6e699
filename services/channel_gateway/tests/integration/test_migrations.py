"""Migration 0002 applies on top of a database at 0001 that already holds charges."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from alembic import command
from channel_gateway.bootstrap import MIGRATIONS
from paykit.db import create_engine_for, run_migrations
from paykit.db.migrations import alembic_config


def _insert_charge(conn: sa.Connection, payment_id: str, channel: str) -> None:
    conn.execute(
        sa.text(
            "insert into charges (payment_id, order_id, channel, amount_minor, currency, trace_headers) "
            "values (:p, 'ord_1', :c, 100, 'CNY', '{}')"
        ),
        {"p": payment_id, "c": channel},
    )


def test_0002_keys_charges_by_payment_and_channel_and_adds_refunds(
    gw_fresh_database: Callable[[], str],
) -> None:
    url = gw_fresh_database()
    run_migrations(MIGRATIONS, url, "0001")
    engine = create_engine_for(url, application_name="migration-test", pool_size=1)
    try:
        with engine.begin() as conn:
            _insert_charge(conn, "pay_before", "simulator")
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
                _insert_charge(conn, "pay_before", "simulator_b")  # 0001: one charge per payment

        run_migrations(MIGRATIONS, url, "head")

        with engine.begin() as conn:
            _insert_charge(conn, "pay_before", "simulator_b")
            rows = conn.execute(sa.text("select channel from charges where payment_id='pay_before'")).all()
            assert sorted(r.channel for r in rows) == ["simulator", "simulator_b"]
            conn.execute(
                sa.text(
                    "insert into refunds (refund_id, payment_id, order_id, channel, amount_minor, currency, "
                    "trace_headers) values ('rfd_1', 'pay_before', 'ord_1', 'simulator', 50, 'CNY', '{}')"
                )
            )
            conn.execute(sa.text("update notifications set refund_id = 'rfd_1' where false"))
            conn.execute(sa.text("select refund_id from channel_exchanges limit 1"))
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
                conn.execute(
                    sa.text(
                        "insert into refunds (refund_id, payment_id, order_id, channel, amount_minor, "
                        "currency, trace_headers) values ('rfd_0', 'p', 'o', 'c', 0, 'CNY', '{}')"
                    )
                )
            conn.execute(sa.text("delete from charges where channel = 'simulator_b'"))

        command.downgrade(alembic_config(MIGRATIONS, url), "0001")
        inspector = sa.inspect(engine)
        assert "refunds" not in inspector.get_table_names()
        assert inspector.get_pk_constraint("charges")["constrained_columns"] == ["payment_id"]
    finally:
        engine.dispose()
