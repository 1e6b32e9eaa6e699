"""orders: refunds, closing and the expiry retry schedule; applied refunds

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _build_indexes_concurrently()
    # Columns with a constant default are a catalogue change in PostgreSQL 11+:
    # no table rewrite, so this is safe on a large orders table.
    op.add_column("orders", sa.Column("refunded_minor", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column("orders", sa.Column("pay_method", sa.Text))
    op.add_column("orders", sa.Column("close_reason", sa.Text))
    op.add_column("orders", sa.Column("closed_at", sa.DateTime(timezone=True)))
    op.add_column("orders", sa.Column("next_close_at", sa.DateTime(timezone=True)))
    op.add_column("orders", sa.Column("close_attempts", sa.Integer, nullable=False, server_default="0"))
    # The domain checks this too; the database refuses it whatever the code does.
    # NOT VALID then VALIDATE: the scan of existing rows does not block writes.
    op.execute(
        "ALTER TABLE orders ADD CONSTRAINT orders_refunded_within_amount "
        "CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor) NOT VALID"
    )
    op.execute("ALTER TABLE orders VALIDATE CONSTRAINT orders_refunded_within_amount")
    op.create_table(
        "order_refunds",
        sa.Column("refund_id", sa.Text, primary_key=True),
        sa.Column("order_id", sa.Text, nullable=False),
        sa.Column("payment_id", sa.Text, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("succeeded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("amount_minor > 0", name="order_refunds_amount_positive"),
    )


def _build_indexes_concurrently() -> None:
    """CONCURRENTLY keeps orders writable while the indexes build, but cannot run
    in a transaction. Built first and only on columns 0001 made, so a failure
    here or later leaves nothing half-applied that a re-run trips over; each is
    dropped first because an interrupted build leaves an INVALID index behind."""
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS orders_open_by_expiry")
        # The expiry scan: open orders by expires_at (then filtered on next_close_at).
        op.create_index(
            "orders_open_by_expiry",
            "orders",
            ["expires_at"],
            postgresql_where=sa.text("status IN ('CREATED', 'PAYING')"),
            postgresql_concurrently=True,
        )
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS duplicate_payments_order_id")
        # Loading an order reads its duplicate payments.
        op.create_index(
            "duplicate_payments_order_id",
            "duplicate_payments",
            ["order_id"],
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    op.drop_index("duplicate_payments_order_id", table_name="duplicate_payments")
    op.drop_index("orders_open_by_expiry", table_name="orders")
    op.drop_table("order_refunds")
    op.drop_constraint("orders_refunded_within_amount", "orders", type_="check")
    for column in ("close_attempts", "next_close_at", "closed_at", "close_reason", "pay_method"):
        op.drop_column("orders", column)
    op.drop_column("orders", "refunded_minor")
