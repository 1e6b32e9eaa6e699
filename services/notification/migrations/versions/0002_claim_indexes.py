"""indexes for claiming per endpoint and counting leases

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_OPEN = "status IN ('PENDING', 'RETRYING')"


def upgrade() -> None:
    # The claim walks each endpoint's due deliveries in order and stops at its limit,
    # instead of ranking every due delivery of every endpoint on each claim (a large
    # backlog made each claim cost as much as the backlog).
    op.create_index(
        "deliveries_due_by_endpoint",
        "deliveries",
        ["endpoint_id", "next_attempt_at", "sequence"],
        postgresql_where=_OPEN,
    )
    # In-flight counts per endpoint read only leased rows, never the backlog.
    op.create_index(
        "deliveries_leased",
        "deliveries",
        ["endpoint_id", "lease_until"],
        postgresql_where=f"lease_token IS NOT NULL AND {_OPEN}",
    )
    op.drop_index("deliveries_due", table_name="deliveries")


def downgrade() -> None:
    op.create_index("deliveries_due", "deliveries", ["next_attempt_at"], postgresql_where=_OPEN)
    op.drop_index("deliveries_leased", table_name="deliveries")
    op.drop_index("deliveries_due_by_endpoint", table_name="deliveries")
