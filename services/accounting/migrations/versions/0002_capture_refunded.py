"""captures.refunded_minor: a payment's refunds never add up to more than its amount

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Captures stored before this revision start from 0: the ledger did not track their refunds.
    op.add_column("captures", sa.Column("refunded_minor", sa.BigInteger, nullable=False, server_default="0"))
    op.create_check_constraint(
        "captures_refunded", "captures", "refunded_minor >= 0 AND refunded_minor <= gross_minor"
    )


def downgrade() -> None:
    op.drop_constraint("captures_refunded", "captures", type_="check")
    op.drop_column("captures", "refunded_minor")
