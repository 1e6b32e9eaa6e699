"""internal records, statement files and lines, runs, discrepancies and their audit trail,
suspense; outbox, inbox, idempotency keys

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
_IDS = postgresql.ARRAY(sa.BigInteger)
_KINDS = "kind IN ('PAYMENT', 'REFUND')"
_STATUSES = "status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED', 'PENDING', 'FAILED', 'CLOSED')"


def _money_checks(table: str) -> list[sa.CheckConstraint]:
    return [
        sa.CheckConstraint(_KINDS, name=f"{table}_kind"),
        sa.CheckConstraint(_STATUSES, name=f"{table}_status"),
        # Positive: the kind gives the direction (reconciliation.domain.records).
        sa.CheckConstraint("amount_minor > 0", name=f"{table}_amount_positive"),
        sa.CheckConstraint("fee_minor IS NULL OR fee_minor >= 0", name=f"{table}_fee"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=f"{table}_currency"),
    ]


def _internal_records() -> None:
    # One row per payment or refund outcome, as payment.events / refund.events said it
    # (reconciliation.domain.records.INTERNAL_RECORD_SCHEMA plus where it came from).
    op.create_table(
        "internal_records",
        sa.Column("record_id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("business_day", sa.Date, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("our_id", sa.Text, nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("channel_txn_id", sa.Text),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("fee_minor", sa.BigInteger),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("occurred_at", _TS, nullable=False),
        sa.Column("batch_key", sa.Text),
        sa.Column("merchant_id", sa.Text, nullable=False),
        sa.Column("order_id", sa.Text, nullable=False),
        # The event whose state the row holds now, and when the row last changed.
        sa.Column("source_event_id", sa.Text, nullable=False),
        sa.Column("source_event_type", sa.Text, nullable=False),
        # payment.succeeded's duplicate_reason, refund.*'s automatic, failure codes.
        sa.Column("attributes", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("captured_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        # One row per payment and per refund, however many events speak of it.
        sa.UniqueConstraint("kind", "our_id", name="internal_records_kind_our_id"),
        *_money_checks("internal_records"),
    )
    # A run reads one channel's day.
    op.create_index("internal_records_by_day", "internal_records", ["channel", "business_day"])
    op.create_index(
        "internal_records_by_txn",
        "internal_records",
        ["channel", "channel_txn_id"],
        postgresql_where=sa.text("channel_txn_id IS NOT NULL AND channel_txn_id <> ''"),
    )


def _statements() -> None:
    op.create_table(
        "statement_files",
        sa.Column("file_id", sa.Text, primary_key=True),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("business_day", sa.Date, nullable=False),
        sa.Column("format", sa.Text, nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        # Importing the same bytes again finds this row and changes nothing.
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("account", sa.Text, nullable=False),
        sa.Column("line_count", sa.Integer, nullable=False),
        sa.Column("imported_at", _TS, nullable=False),
        # A different file for a day that has one is refused unless it explicitly replaces
        # it: the old one is then marked here and kept (its lines too) for the audit.
        sa.Column("replaced_at", _TS),
        # Deferred: the replacement marks the old file, then inserts the new one, in one
        # transaction (in that order, so two files are never current at once).
        sa.Column(
            "replaced_by",
            sa.Text,
            sa.ForeignKey("statement_files.file_id", deferrable=True, initially="DEFERRED"),
        ),
        sa.Column("replace_reason", sa.Text),
        sa.UniqueConstraint("sha256", name="statement_files_sha256"),
        sa.CheckConstraint("line_count >= 0", name="statement_files_line_count"),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="statement_files_sha256_hex"),
        sa.CheckConstraint(
            "(replaced_at IS NULL) = (replaced_by IS NULL)", name="statement_files_replaced_together"
        ),
    )
    # At most one current statement per channel and day, enforced by the database.
    op.create_index(
        "statement_files_current",
        "statement_files",
        ["channel", "business_day"],
        unique=True,
        postgresql_where=sa.text("replaced_at IS NULL"),
    )
    op.create_table(
        "statement_lines",
        sa.Column("file_id", sa.Text, sa.ForeignKey("statement_files.file_id"), primary_key=True),
        sa.Column("line_no", sa.BigInteger, primary_key=True),
        # reconciliation.domain.records.STATEMENT_LINE_SCHEMA
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("business_day", sa.Date, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("channel_txn_id", sa.Text),
        sa.Column("our_id", sa.Text),
        sa.Column("reference", sa.Text),
        sa.Column("batch_id", sa.Text),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("fee_minor", sa.BigInteger),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("occurred_at", _TS, nullable=False),
        sa.CheckConstraint("line_no >= 0", name="statement_lines_line_no"),
        *_money_checks("statement_lines"),
    )
    op.create_index("statement_lines_by_day", "statement_lines", ["channel", "business_day"])


def _runs_and_discrepancies() -> None:
    op.create_table(
        "recon_runs",
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("business_day", sa.Date, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("statement_file_id", sa.Text, sa.ForeignKey("statement_files.file_id")),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS),
        # Outcome counts and sums by type, side and currency (reconciliation.domain SUMMARY_SCHEMA),
        # and the sizes of both inputs.
        sa.Column("counts", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("error", sa.Text),
        sa.CheckConstraint("status IN ('RUNNING', 'SUCCEEDED', 'FAILED')", name="recon_runs_status"),
        sa.CheckConstraint(
            "(status = 'RUNNING') = (finished_at IS NULL)", name="recon_runs_finished_when_done"
        ),
    )
    op.create_index("recon_runs_by_day", "recon_runs", ["channel", "business_day", "started_at"])
    op.create_table(
        "discrepancies",
        sa.Column("discrepancy_id", sa.Text, primary_key=True),
        sa.Column("run_id", sa.Text, sa.ForeignKey("recon_runs.run_id"), nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("business_day", sa.Date, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("side", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("our_id", sa.Text),
        sa.Column("channel_txn_id", sa.Text),
        # The records concerned: internal_records.record_id and statement lines (file, line).
        sa.Column(
            "internal_record_ids", postgresql.ARRAY(sa.BigInteger), nullable=False, server_default="{}"
        ),
        sa.Column("statement_file_id", sa.Text, sa.ForeignKey("statement_files.file_id")),
        sa.Column("statement_line_nos", _IDS, nullable=False, server_default="{}"),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("internal_amount_minor", sa.BigInteger),
        sa.Column("channel_amount_minor", sa.BigInteger),
        sa.Column("internal_fee_minor", sa.BigInteger),
        sa.Column("channel_fee_minor", sa.BigInteger),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("resolution", sa.Text),
        sa.Column("actor", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("resolved_at", _TS),
        sa.CheckConstraint(
            "type IN ('CHANNEL_ONLY', 'INTERNAL_ONLY', 'AMOUNT_MISMATCH', 'STATUS_MISMATCH', "
            "'FEE_MISMATCH', 'CURRENCY_MISMATCH', 'DUPLICATE')",
            name="discrepancies_type",
        ),
        sa.CheckConstraint("side IN ('INTERNAL', 'CHANNEL', 'BOTH')", name="discrepancies_side"),
        sa.CheckConstraint(_KINDS, name="discrepancies_kind"),
        sa.CheckConstraint("status IN ('OPEN', 'RESOLVED', 'AUTO_RESOLVED')", name="discrepancies_status"),
        # Resolved means resolved by someone, with a resolution and when.
        sa.CheckConstraint(
            "(status = 'OPEN') = (resolved_at IS NULL) "
            "AND (status = 'OPEN' OR (resolution IS NOT NULL AND actor IS NOT NULL))",
            name="discrepancies_resolved_fields",
        ),
    )
    op.create_index("discrepancies_by_run", "discrepancies", ["run_id"])
    op.create_index(
        "discrepancies_by_day", "discrepancies", ["channel", "business_day", "status", "discrepancy_id"]
    )
    op.create_index(
        "discrepancies_open",
        "discrepancies",
        ["discrepancy_id"],
        postgresql_where=sa.text("status = 'OPEN'"),
    )
    # Append-only: every change of a discrepancy (found, resolved, reopened) with who and why.
    op.create_table(
        "discrepancy_audit",
        sa.Column("audit_id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("discrepancy_id", sa.Text, sa.ForeignKey("discrepancies.discrepancy_id"), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("from_status", sa.Text),
        sa.Column("to_status", sa.Text, nullable=False),
        sa.Column("resolution", sa.Text),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("idempotency_key", sa.Text),
    )
    op.create_index("discrepancy_audit_by_discrepancy", "discrepancy_audit", ["discrepancy_id", "audit_id"])
    op.execute(
        """
        CREATE FUNCTION discrepancy_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'discrepancy_audit is append-only: record a new entry instead';
        END $$;
        CREATE TRIGGER discrepancy_audit_append_only BEFORE UPDATE OR DELETE ON discrepancy_audit
            FOR EACH ROW EXECUTE FUNCTION discrepancy_audit_append_only();
        """
    )


def _suspense() -> None:
    # Records not matched near their day's cut-off, carried to the next days' runs.
    op.create_table(
        "suspense_items",
        sa.Column("item_id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("side", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("our_id", sa.Text),
        sa.Column("channel_txn_id", sa.Text),
        sa.Column("internal_record_id", sa.BigInteger, sa.ForeignKey("internal_records.record_id")),
        sa.Column("statement_file_id", sa.Text, sa.ForeignKey("statement_files.file_id")),
        sa.Column("statement_line_no", sa.BigInteger),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("first_seen_day", sa.Date, nullable=False),
        sa.Column("last_run_day", sa.Date, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("first_run_id", sa.Text, sa.ForeignKey("recon_runs.run_id"), nullable=False),
        sa.Column("closed_run_id", sa.Text, sa.ForeignKey("recon_runs.run_id")),
        # When it waited too long: the discrepancy it became.
        sa.Column("discrepancy_id", sa.Text, sa.ForeignKey("discrepancies.discrepancy_id")),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("side IN ('INTERNAL', 'CHANNEL')", name="suspense_items_side"),
        sa.CheckConstraint(_KINDS, name="suspense_items_kind"),
        sa.CheckConstraint("status IN ('WAITING', 'MATCHED', 'EXPIRED')", name="suspense_items_status"),
        sa.CheckConstraint("attempts >= 1", name="suspense_items_attempts"),
        sa.CheckConstraint(
            "(side = 'INTERNAL') = (internal_record_id IS NOT NULL) "
            "AND (side = 'CHANNEL') = (statement_file_id IS NOT NULL AND statement_line_no IS NOT NULL)",
            name="suspense_items_one_side",
        ),
    )
    # A record waits in the pool once.
    op.create_index(
        "suspense_items_internal_waiting",
        "suspense_items",
        ["internal_record_id"],
        unique=True,
        postgresql_where=sa.text("status = 'WAITING' AND side = 'INTERNAL'"),
    )
    op.create_index(
        "suspense_items_channel_waiting",
        "suspense_items",
        ["statement_file_id", "statement_line_no"],
        unique=True,
        postgresql_where=sa.text("status = 'WAITING' AND side = 'CHANNEL'"),
    )
    op.create_index("suspense_items_by_channel", "suspense_items", ["channel", "status", "first_seen_day"])


def upgrade() -> None:
    _internal_records()
    _statements()
    _runs_and_discrepancies()
    _suspense()
    create_messaging_tables_v1(op)
    create_idempotency_table_v1(op)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS idempotency_keys, inbox, outbox")
    for table in (
        "suspense_items",
        "discrepancy_audit",
        "discrepancies",
        "recon_runs",
        "statement_lines",
        "statement_files",
        "internal_records",
    ):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS discrepancy_audit_append_only()")
