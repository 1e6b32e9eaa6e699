"""accounts, journal entries and lines, captures, settlements, posting failures; outbox, inbox, keys

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from paykit.idempotency import create_idempotency_table_v1
from paykit.messaging.schema import create_messaging_tables_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("normal_side", sa.Text, nullable=False),
        sa.Column("must_not_go_negative", sa.Boolean, nullable=False),
        sa.Column("balance_minor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("type IN ('asset', 'liability', 'income', 'expense')", name="accounts_type"),
        sa.CheckConstraint("normal_side IN ('DEBIT', 'CREDIT')", name="accounts_normal_side"),
        # The last line of defence: the database refuses what the code must never do.
        sa.CheckConstraint("NOT must_not_go_negative OR balance_minor >= 0", name="accounts_not_negative"),
    )
    op.create_table(
        "journal_entries",
        sa.Column("entry_id", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False, unique=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("reference", sa.Text, nullable=False, index=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("reverses_entry_id", sa.Text, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "journal_lines",
        sa.Column("line_id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("entry_id", sa.Text, sa.ForeignKey("journal_entries.entry_id"), nullable=False, index=True),
        sa.Column("account_id", sa.Text, sa.ForeignKey("accounts.account_id"), nullable=False),
        sa.Column("side", sa.Text, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.CheckConstraint("side IN ('DEBIT', 'CREDIT')", name="journal_lines_side"),
        sa.CheckConstraint("amount_minor > 0", name="journal_lines_amount_positive"),
    )
    op.create_index("journal_lines_by_account", "journal_lines", ["account_id", "line_id"])
    # Entries and lines are immutable: corrections are reversing entries.
    op.execute(
        """
        CREATE FUNCTION ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'journal % are immutable: post a reversal instead', TG_TABLE_NAME;
        END $$;
        CREATE TRIGGER journal_entries_immutable BEFORE UPDATE OR DELETE ON journal_entries
            FOR EACH ROW EXECUTE FUNCTION ledger_immutable();
        CREATE TRIGGER journal_lines_immutable BEFORE UPDATE OR DELETE ON journal_lines
            FOR EACH ROW EXECUTE FUNCTION ledger_immutable();
        """
    )
    op.create_table(
        "captures",
        sa.Column("payment_id", sa.Text, primary_key=True),
        sa.Column("merchant_id", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("gross_minor", sa.BigInteger, nullable=False),
        sa.Column("net_minor", sa.BigInteger, nullable=False),
        sa.Column("unreleased_minor", sa.BigInteger, nullable=False),
        sa.Column("duplicate", sa.Boolean, nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("release_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "unreleased_minor >= 0 AND unreleased_minor <= net_minor", name="captures_unreleased"
        ),
    )
    op.create_index(
        "captures_release_due", "captures", ["release_at"], postgresql_where=sa.text("unreleased_minor > 0")
    )
    op.create_table(
        "settlements",
        sa.Column("settlement_id", sa.Text, primary_key=True),
        sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
        sa.Column("merchant_id", sa.Text, nullable=False, index=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("payout_reference", sa.Text),
        sa.Column("failure", sa.Text),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_out_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("amount_minor > 0", name="settlements_amount_positive"),
    )
    op.create_table(
        "posting_failures",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    create_messaging_tables_v1(op)
    create_idempotency_table_v1(op)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS idempotency_keys, inbox, outbox")
    for table in (
        "posting_failures",
        "settlements",
        "captures",
        "journal_lines",
        "journal_entries",
        "accounts",
    ):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS ledger_immutable()")
