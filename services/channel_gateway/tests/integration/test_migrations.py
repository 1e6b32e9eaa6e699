"""Migrations apply on top of databases that already hold data: 0002 over charges, 0003 over exchanges."""

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


def _insert_payout(
    conn: sa.Connection, settlement_id: str, amount_minor: int = 100, state: str | None = None
) -> None:
    conn.execute(
        sa.text(
            "insert into payouts (settlement_id, merchant_id, channel, amount_minor, currency, state) "
            "values (:s, 'mch_1', 'simulator', :a, 'CNY', :st)"
        ),
        {"s": settlement_id, "a": amount_minor, "st": state},
    )


def _insert_exchange(conn: sa.Connection, payment_id: str | None, settlement_id: str | None) -> None:
    conn.execute(
        sa.text(
            "insert into channel_exchanges (payment_id, settlement_id, channel, operation, request_body) "
            "values (:p, :s, 'simulator', 'payout', '{}')"
        ),
        {"p": payment_id, "s": settlement_id},
    )


def test_0003_adds_payouts_and_exchanges_about_a_settlement(gw_fresh_database: Callable[[], str]) -> None:
    url = gw_fresh_database()
    run_migrations(MIGRATIONS, url, "0002")
    engine = create_engine_for(url, application_name="migration-test", pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "insert into channel_exchanges (payment_id, channel, operation, request_body) "
                    "values ('pay_before', 'simulator', 'charge', '{}')"
                )
            )

        run_migrations(MIGRATIONS, url, "head")

        with engine.begin() as conn:
            _insert_payout(conn, "stl_1")
            _insert_payout(conn, "stl_2", state="PAID")
            _insert_exchange(conn, None, "stl_1")
            for bad in (
                lambda: _insert_payout(conn, "stl_1"),  # one payout per settlement
                lambda: _insert_payout(conn, "stl_0", amount_minor=0),
                lambda: _insert_payout(conn, "stl_3", state="MAYBE"),
                lambda: _insert_exchange(conn, None, None),  # an exchange is about something
            ):
                with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
                    bad()
            about = conn.execute(
                sa.text("select payment_id, settlement_id from channel_exchanges order by id")
            )
            assert [tuple(r) for r in about] == [("pay_before", None), (None, "stl_1")]

        with pytest.raises(sa.exc.IntegrityError):
            # A payout's exchange cannot fit the old table: the downgrade refuses rather than drop it.
            command.downgrade(alembic_config(MIGRATIONS, url), "0002")
        with engine.begin() as conn:
            conn.execute(sa.text("delete from channel_exchanges where payment_id is null"))
        command.downgrade(alembic_config(MIGRATIONS, url), "0002")
        inspector = sa.inspect(engine)
        assert "payouts" not in inspector.get_table_names()
        columns = {c["name"]: c for c in inspector.get_columns("channel_exchanges")}
        assert "settlement_id" not in columns and columns["payment_id"]["nullable"] is False
    finally:
        engine.dispose()
