"""deliveries carry the trace context of the event that caused them

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The W3C carrier ({"traceparent": ..., "tracestate": ...}) of the consumer span that
    # created the delivery: each POST of it, sent later by the worker, joins that trace.
    # Nullable: deliveries made before it have none, and their POSTs start a trace of their own.
    op.add_column("deliveries", sa.Column("trace_context", postgresql.JSONB))


def downgrade() -> None:
    op.drop_column("deliveries", "trace_context")
