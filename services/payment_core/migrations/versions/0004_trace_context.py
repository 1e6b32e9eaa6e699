"""trace context of payments and refunds, for the work the scheduler does on them later

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("payments", "refunds"):
        op.add_column(table, sa.Column("trace_headers", JSONB, nullable=False, server_default="{}"))


def downgrade() -> None:
    for table in ("payments", "refunds"):
        op.drop_column(table, "trace_headers")
