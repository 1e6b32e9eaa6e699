"""accounting's tables (SQLAlchemy Core); rows never leave adapters/."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_id", sa.Text, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("normal_side", sa.Text, nullable=False),
    sa.Column("must_not_go_negative", sa.Boolean, nullable=False),
    # In the normal direction; kept in the same transaction as the lines that move it.
    sa.Column("balance_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

journal_entries = sa.Table(
    "journal_entries",
    metadata,
    sa.Column("entry_id", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False, unique=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("reverses_entry_id", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

journal_lines = sa.Table(
    "journal_lines",
    metadata,
    sa.Column("line_id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("entry_id", sa.Text, nullable=False),
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("side", sa.Text, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
)

captures = sa.Table(
    "captures",
    metadata,
    sa.Column("payment_id", sa.Text, primary_key=True),
    sa.Column("merchant_id", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("gross_minor", sa.BigInteger, nullable=False),
    sa.Column("net_minor", sa.BigInteger, nullable=False),
    sa.Column("unreleased_minor", sa.BigInteger, nullable=False),
    sa.Column("duplicate", sa.Boolean, nullable=False),
    # All refunds of the payment posted so far (migration 0002).
    sa.Column("refunded_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("release_at", sa.DateTime(timezone=True), nullable=False),
)

settlements = sa.Table(
    "settlements",
    metadata,
    sa.Column("settlement_id", sa.Text, primary_key=True),
    sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
    sa.Column("merchant_id", sa.Text, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("payout_reference", sa.Text),
    sa.Column("failure", sa.Text),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("paid_out_at", sa.DateTime(timezone=True)),
)

posting_failures = sa.Table(
    "posting_failures",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# refund.events and payment.events are separate topics: a refund can be read
# before its payment's capture. It waits here, posted when the capture is.
deferred_refunds = sa.Table(
    "deferred_refunds",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("refund_id", sa.Text, nullable=False),
    sa.Column("payment_id", sa.Text, nullable=False),
    sa.Column("merchant_id", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("automatic", sa.Boolean, nullable=False),
    sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deferred_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
