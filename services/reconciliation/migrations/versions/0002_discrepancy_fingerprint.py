"""discrepancies.fingerprint: one discrepancy per (channel, type, records), however often a day
is run again

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
    # "<type>|<record>,<record>,..." (service_layer/runs.py): the records a discrepancy is
    # about, ours by kind and id, the channel's by day and trade number (or line). A run of a
    # day already run finds the discrepancies it already knows here and does not add them again.
    op.add_column("discrepancies", sa.Column("fingerprint", sa.Text))
    op.create_index(
        "discrepancies_fingerprint",
        "discrepancies",
        ["channel", "fingerprint"],
        unique=True,
        postgresql_where=sa.text("fingerprint IS NOT NULL"),
    )
    # The open-discrepancies gauge counts by channel and type.
    op.create_index(
        "discrepancies_open_by_type",
        "discrepancies",
        ["channel", "type"],
        postgresql_where=sa.text("status = 'OPEN'"),
    )


def downgrade() -> None:
    op.drop_index("discrepancies_open_by_type", table_name="discrepancies")
    op.drop_index("discrepancies_fingerprint", table_name="discrepancies")
    op.drop_column("discrepancies", "fingerprint")
