"""index of open payments by age, for the stuck-payments gauge

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OPEN = "status IN ('PROCESSING', 'UNKNOWN')"


def upgrade() -> None:
    # payment-core counts open payments older than the stuck threshold every 30 s;
    # open payments are few, so a partial index keeps that count off the whole table.
    op.create_index("payments_open_created", "payments", ["created_at"], postgresql_where=OPEN)


def downgrade() -> None:
    op.drop_index("payments_open_created", table_name="payments")
