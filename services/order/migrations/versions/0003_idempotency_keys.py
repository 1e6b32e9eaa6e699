"""idempotency keys of mutating RPCs

Revision ID: 0003
Revises: 0002
"""

from alembic import op
from paykit.idempotency import create_idempotency_table_v1

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_table_v1(op)


def downgrade() -> None:
    op.drop_table("idempotency_keys")
