"""The order database's tables (SQLAlchemy Core); rows never leave adapters/."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Statuses the expiry scheduler scans; the partial index below covers exactly these.
OPEN_STATUS_VALUES = ("CREATED", "PAYING")

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("merchant_id", sa.Text, nullable=False),
    sa.Column("merchant_order_no", sa.Text, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("pay_attempts", sa.Integer, nullable=False),
    sa.Column("payment_id", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("paid_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    # 0002: refunds, closing and the expiry retry schedule.
    sa.Column("refunded_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("pay_method", sa.Text),
    sa.Column("close_reason", sa.Text),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("next_close_at", sa.DateTime(timezone=True)),
    sa.Column("close_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.UniqueConstraint("merchant_id", "merchant_order_no", name="orders_merchant_order_no_key"),
)

# Declared here too, so a schema built from `metadata` matches the migrations.
sa.Index(
    "orders_open_by_expiry",
    orders.c.expires_at,
    postgresql_where=orders.c.status.in_(OPEN_STATUS_VALUES),
)

# Payments that landed on an order already paid or closed; payment-core refunds them.
duplicate_payments = sa.Table(
    "duplicate_payments",
    metadata,
    sa.Column("payment_id", sa.Text, primary_key=True),
    sa.Column("order_id", sa.Text, nullable=False),
    sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
sa.Index("duplicate_payments_order_id", duplicate_payments.c.order_id)

# Refunds of the order's own payment already counted in orders.refunded_minor.
# The refund id is the natural key: a refund reported twice (even under two
# event ids, which the inbox cannot catch) is counted once.
order_refunds = sa.Table(
    "order_refunds",
    metadata,
    sa.Column("refund_id", sa.Text, primary_key=True),
    sa.Column("order_id", sa.Text, nullable=False),
    sa.Column("payment_id", sa.Text, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("succeeded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
