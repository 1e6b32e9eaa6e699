"""payouts; channel exchanges about a settlement's payout (settlement_id, payment_id optional)

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
        "payouts",
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
    # A payout's exchange is about a settlement, not a payment.
    op.add_column("channel_exchanges", sa.Column("settlement_id", sa.Text))
    op.create_index("ix_channel_exchanges_settlement_id", "channel_exchanges", ["settlement_id"])
    op.alter_column("channel_exchanges", "payment_id", existing_type=sa.Text, nullable=True)
    op.create_check_constraint(
        "channel_exchanges_about_something",
        "channel_exchanges",
        "payment_id IS NOT NULL OR settlement_id IS NOT NULL",
    )


def downgrade() -> None:
    op.drop_constraint("channel_exchanges_about_something", "channel_exchanges", type_="check")
    # Fails while payout exchanges are stored: that audit record cannot fit the old table, and
    # dropping it silently would lose what the channel said about money paid out.
    op.alter_column("channel_exchanges", "payment_id", existing_type=sa.Text, nullable=False)
    op.drop_index("ix_channel_exchanges_settlement_id", table_name="channel_exchanges")
    op.drop_column("channel_exchanges", "settlement_id")
    op.drop_table("payouts")
