"""payment lifecycle: deadlines, query schedule, refunds, order closures, channel health

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OPEN = "status IN ('PROCESSING', 'UNKNOWN')"


def upgrade() -> None:
    op.add_column(
        "payments",
        sa.Column(
            "expires_at",
            sa.DateTime(timezone=True),
            nullable=False,
            # Rows from before deadlines existed get the default 30 minutes.
            server_default=sa.text("now() + interval '30 minutes'"),
        ),
    )
    op.alter_column("payments", "expires_at", server_default=None)
    op.add_column("payments", sa.Column("failure_message", sa.Text))
    op.add_column("payments", sa.Column("refunded_minor", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column(
        "payments", sa.Column("refund_reserved_minor", sa.BigInteger, nullable=False, server_default="0")
    )
    op.add_column("payments", sa.Column("duplicate_reason", sa.Text))
    op.add_column("payments", sa.Column("auto_refund_id", sa.Text))
    op.add_column("payments", sa.Column("next_query_at", sa.DateTime(timezone=True)))
    op.add_column("payments", sa.Column("query_attempts", sa.Integer, nullable=False, server_default="0"))
    # The database itself refuses a refund total above the captured amount.
    op.create_check_constraint(
        "payments_refunds_within_amount",
        "payments",
        "0 <= refunded_minor AND refunded_minor <= refund_reserved_minor "
        "AND refund_reserved_minor <= amount_minor",
    )
    op.execute(f"UPDATE payments SET next_query_at = now() WHERE {OPEN}")
    op.create_index(
        "payments_query_due",
        "payments",
        ["next_query_at"],
        postgresql_where=sa.text("next_query_at IS NOT NULL"),
    )

    op.create_table(
        "refunds",
        sa.Column("refund_id", sa.Text, primary_key=True),
        sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
        sa.Column("payment_id", sa.Text, nullable=False, index=True),
        sa.Column("order_id", sa.Text, nullable=False, index=True),
        sa.Column("merchant_id", sa.Text, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("automatic", sa.Boolean, nullable=False),
        sa.Column("channel_refund_no", sa.Text),
        sa.Column("failure_code", sa.Text),
        sa.Column("failure_message", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("succeeded_at", sa.DateTime(timezone=True)),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("amount_minor > 0", name="refunds_amount_positive"),
    )
    op.create_index(
        "refunds_attempt_due",
        "refunds",
        ["next_attempt_at"],
        postgresql_where=sa.text("next_attempt_at IS NOT NULL"),
    )
    op.create_table(
        "refund_state_changes",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("refund_id", sa.Text, nullable=False, index=True),
        sa.Column("from_status", sa.Text, nullable=False),
        sa.Column("to_status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "order_closures",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("state IN ('CLOSING', 'CLOSED')", name="order_closures_state"),
    )
    op.create_table(
        "channel_health",
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("consecutive_errors", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unhealthy_until", sa.DateTime(timezone=True)),
        sa.Column("operator_disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("actor", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    for table in ("channel_health", "order_closures", "refund_state_changes", "refunds"):
        op.drop_table(table)
    op.drop_index("payments_query_due", table_name="payments")
    op.drop_constraint("payments_refunds_within_amount", "payments")
    for column in (
        "query_attempts",
        "next_query_at",
        "auto_refund_id",
        "duplicate_reason",
        "refund_reserved_minor",
        "refunded_minor",
        "failure_message",
        "expires_at",
    ):
        op.drop_column("payments", column)
