"""statement files: each channel's downloaded statements, kept as the channel sent them

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "statement_files",
        sa.Column("statement_id", sa.Text, primary_key=True),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("format", sa.Text, nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        # The bytes as received: reconciliation parses them, an audit can re-read them.
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("downloaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # Downloading the same bytes again is the same statement, not a second one.
        sa.UniqueConstraint("channel", "day", "sha256", name="statement_files_same_bytes"),
    )
    # A statement download's exchange is about a day, neither a payment nor a settlement.
    op.add_column("channel_exchanges", sa.Column("statement_day", sa.Date))
    op.drop_constraint("channel_exchanges_about_something", "channel_exchanges", type_="check")
    op.create_check_constraint(
        "channel_exchanges_about_something",
        "channel_exchanges",
        "payment_id IS NOT NULL OR settlement_id IS NOT NULL OR statement_day IS NOT NULL",
    )


def downgrade() -> None:
    op.drop_constraint("channel_exchanges_about_something", "channel_exchanges", type_="check")
    op.execute("DELETE FROM channel_exchanges WHERE statement_day IS NOT NULL")
    op.create_check_constraint(
        "channel_exchanges_about_something",
        "channel_exchanges",
        "payment_id IS NOT NULL OR settlement_id IS NOT NULL",
    )
    op.drop_column("channel_exchanges", "statement_day")
    op.drop_table("statement_files")
