"""The notification database's tables, as SQLAlchemy Core (the migrations own the DDL)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()
_TS = sa.DateTime(timezone=True)

endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("endpoint_id", sa.Text, primary_key=True),
    sa.Column("merchant_id", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("event_types", postgresql.ARRAY(sa.Text), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("previous_secret", sa.Text),
    sa.Column("previous_secret_expires_at", _TS),
    sa.Column("breaker_failures", sa.Integer, nullable=False),
    sa.Column("breaker_open_until", _TS),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("delivery_id", sa.Text, primary_key=True),
    sa.Column("endpoint_id", sa.Text, nullable=False),
    sa.Column("merchant_id", sa.Text, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("order_id", sa.Text, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts_made", sa.Integer, nullable=False),
    sa.Column("round_attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", _TS),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("lease_token", sa.Text),
    sa.Column("lease_until", _TS),
    sa.Column("last_error", sa.Text, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("delivered_at", _TS),
    sa.Column("trace_context", postgresql.JSONB),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("delivery_id", sa.Text, primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("at", _TS, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("response", sa.Text, nullable=False),
)
