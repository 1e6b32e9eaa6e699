"""deferred_refunds: refunds that arrived before their payment's capture

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deferred_refunds",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("refund_id", sa.Text, nullable=False),
        sa.Column("payment_id", sa.Text, nullable=False, index=True),
        sa.Column("merchant_id", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("automatic", sa.Boolean, nullable=False),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deferred_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("deferred_refunds")
