"""channel-gateway's tables: charges, refunds, payouts, raw exchanges, raw notifications
(migrations 0001, 0002, 0003), channel accounts (0004), statement files (0005)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

# One row per payment and channel: payment-core may fail a payment over to another
# channel after a decline, charging the same payment_id there.
charges = sa.Table(
    "charges",
    metadata,
    sa.Column("payment_id", sa.Text, primary_key=True),
    sa.Column("channel", sa.Text, primary_key=True),
    sa.Column("order_id", sa.Text, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("state", sa.Text),
    sa.Column("channel_trade_no", sa.Text),
    sa.Column("pay_url", sa.Text),
    sa.Column("decline_code", sa.Text),
    sa.Column("decline_message", sa.Text),
    # The payment's trace context, so the channel's later notification joins its trace.
    sa.Column("trace_headers", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# One row per request to a channel: about a payment (and maybe one of its refunds) or a settlement's payout.
channel_exchanges = sa.Table(
    "channel_exchanges",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("payment_id", sa.Text, index=True),
    sa.Column("refund_id", sa.Text),
    sa.Column("settlement_id", sa.Text, index=True),
    sa.Column("statement_day", sa.Date),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("operation", sa.Text, nullable=False),
    sa.Column("request_body", sa.Text, nullable=False),
    sa.Column("response_status", sa.Integer),
    sa.Column("response_body", sa.Text),
    sa.Column("latency_ms", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(
        "payment_id IS NOT NULL OR settlement_id IS NOT NULL OR statement_day IS NOT NULL",
        name="channel_exchanges_about_something",
    ),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("notification_id", sa.Text, primary_key=True),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("channel_notify_id", sa.Text),
    sa.Column("payment_id", sa.Text, index=True),
    sa.Column("refund_id", sa.Text, index=True),
    sa.Column("headers", JSONB, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("verdict", sa.Text, nullable=False),
    sa.Column("reject_reason", sa.Text),
    sa.Column("published_event_id", sa.Text),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# Stored before the channel is called (idempotent on refund_id); state is the
# channel's latest word on it, moved only forward (domain.channel.refund_state_after).
refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("refund_id", sa.Text, primary_key=True),
    sa.Column("payment_id", sa.Text, nullable=False, index=True),
    sa.Column("order_id", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("state", sa.Text),
    sa.Column("channel_refund_no", sa.Text),
    sa.Column("failure_code", sa.Text),
    sa.Column("failure_message", sa.Text),
    sa.Column("refunded_at", sa.DateTime(timezone=True)),
    # The refund's trace context, so the channel's later notification joins its trace.
    sa.Column("trace_headers", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("amount_minor > 0", name="refunds_amount_positive"),
)

# Stored before the channel is called (idempotent on settlement_id, which is also the channel's
# out_payout_no); state is NULL until the channel answered, then its first answer, for good
# (domain.channel.payout_state_after).
payouts = sa.Table(
    "payouts",
    metadata,
    sa.Column("settlement_id", sa.Text, primary_key=True),
    sa.Column("merchant_id", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("state", sa.Text),
    sa.Column("payout_reference", sa.Text),
    sa.Column("failure_code", sa.Text),
    sa.Column("failure_message", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("amount_minor > 0", name="payouts_amount_positive"),
    sa.CheckConstraint("state IS NULL OR state IN ('PAID', 'FAILED')", name="payouts_state_known"),
)


# One channel account per channel name (migration 0004); config_sealed is ConfigBox's.
channel_accounts = sa.Table(
    "channel_accounts",
    metadata,
    sa.Column("channel", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("config_sealed", sa.LargeBinary, nullable=False),
    sa.Column("key_id", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


# Downloaded statements (migration 0005): the bytes as the channel sent them.
statement_files = sa.Table(
    "statement_files",
    metadata,
    sa.Column("statement_id", sa.Text, primary_key=True),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("format", sa.Text, nullable=False),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("downloaded_at", sa.DateTime(timezone=True), nullable=False),
)
