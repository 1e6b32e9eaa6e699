"""endpoints, deliveries, attempts; outbox, inbox, idempotency keys

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from paykit.idempotency import create_idempotency_table_v1
from paykit.messaging.schema import create_messaging_tables_v1
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "endpoints",
        sa.Column("endpoint_id", sa.Text, primary_key=True),
        sa.Column("merchant_id", sa.Text, nullable=False, index=True),
        sa.Column("url", sa.Text, nullable=False),
        # Empty means every type.
        sa.Column("event_types", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        # Stored as they must be used to sign (HMAC needs the key itself); never logged.
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("previous_secret", sa.Text),
        sa.Column("previous_secret_expires_at", _TS),
        # The circuit breaker, shared by every replica's worker.
        sa.Column("breaker_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("breaker_open_until", _TS),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("delivery_id", sa.Text, primary_key=True),
        sa.Column("endpoint_id", sa.Text, sa.ForeignKey("endpoints.endpoint_id"), nullable=False),
        sa.Column("merchant_id", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("order_id", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts_made", sa.Integer, nullable=False, server_default="0"),
        # Attempts since the delivery was created or last redelivered: the position in the schedule.
        sa.Column("round_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", _TS),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("lease_token", sa.Text),
        sa.Column("lease_until", _TS),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("delivered_at", _TS),
        sa.CheckConstraint(
            "status IN ('PENDING', 'DELIVERED', 'RETRYING', 'DEAD')", name="deliveries_status"
        ),
        # A replayed event never makes a second delivery to the same endpoint.
        sa.UniqueConstraint("event_id", "endpoint_id", name="deliveries_event_endpoint"),
        sa.UniqueConstraint("endpoint_id", "order_id", "sequence", name="deliveries_order_sequence"),
    )
    op.create_index(
        "deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status IN ('PENDING', 'RETRYING')"),
    )
    op.create_index("deliveries_by_order", "deliveries", ["order_id", "created_at"])
    op.create_index("deliveries_by_endpoint", "deliveries", ["endpoint_id", "status", "created_at"])
    op.create_table(
        "attempts",
        sa.Column("delivery_id", sa.Text, sa.ForeignKey("deliveries.delivery_id"), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
    )
    create_messaging_tables_v1(op)
    create_idempotency_table_v1(op)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS idempotency_keys, inbox, outbox")
    for table in ("attempts", "deliveries", "endpoints"):
        op.drop_table(table)
