"""charges keyed by (payment_id, channel); refunds; refund_id on notifications and exchanges

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # payment-core fails a payment over to another channel after a decline: one charge per channel.
    op.drop_constraint("charges_pkey", "charges", type_="primary")
    op.create_primary_key("charges_pkey", "charges", ["payment_id", "channel"])
    op.create_table(
        "refunds",
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
        sa.Column("trace_headers", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("amount_minor > 0", name="refunds_amount_positive"),
    )
    op.add_column("notifications", sa.Column("refund_id", sa.Text))
    op.create_index("ix_notifications_refund_id", "notifications", ["refund_id"])
    op.add_column("channel_exchanges", sa.Column("refund_id", sa.Text))


def downgrade() -> None:
    op.drop_column("channel_exchanges", "refund_id")
    op.drop_index("ix_notifications_refund_id", table_name="notifications")
    op.drop_column("notifications", "refund_id")
    op.drop_table("refunds")
    # Fails while a payment has charges at two channels: that history cannot fit the old key.
    op.drop_constraint("charges_pkey", "charges", type_="primary")
    op.create_primary_key("charges_pkey", "charges", ["payment_id"])
