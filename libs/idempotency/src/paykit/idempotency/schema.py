"""The idempotency_keys table each service database holds.

Declared once here, like the outbox and inbox (paykit.messaging.schema): a
service's migration calls `create_idempotency_table_v1(op)`. A later change is
a new `..._v2` used by a new migration, so old migrations never change; the
runtime Table below always describes the newest version.
"""

from __future__ import annotations

import enum
from typing import Any

import sqlalchemy as sa

TABLE_NAME = "idempotency_keys"
# Longest key a caller may choose; checked at the edge (INVALID_ARGUMENT) and by the table.
MAX_KEY_LENGTH = 128
# sha256 digest of the request's deterministic serialization.
REQUEST_HASH_BYTES = 32


class KeyState(enum.StrEnum):
    # A caller holds the claim and is running the handler until `claimed_until`.
    IN_PROGRESS = "IN_PROGRESS"
    # The handler succeeded; `response` holds the bytes every repeat gets.
    COMPLETED = "COMPLETED"


metadata = sa.MetaData()

idempotency_keys = sa.Table(
    TABLE_NAME,
    metadata,
    # Full gRPC method name: one key namespace per method.
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.LargeBinary, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    # Who holds the claim: completing or releasing a claim that was taken
    # over (claimant too slow) must not touch the new claimant's row.
    sa.Column("claim_token", sa.Text, nullable=False),
    sa.Column("response", sa.LargeBinary),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("state IN ('IN_PROGRESS', 'COMPLETED')", name="idempotency_keys_state"),
    sa.CheckConstraint(
        "state = 'IN_PROGRESS' OR response IS NOT NULL", name="idempotency_keys_completed_has_response"
    ),
    sa.CheckConstraint(f"char_length(key) <= {MAX_KEY_LENGTH}", name="idempotency_keys_key_length"),
    sa.CheckConstraint(
        f"octet_length(request_hash) = {REQUEST_HASH_BYTES}", name="idempotency_keys_request_hash_length"
    ),
)

# Declared on the table too, so a schema built from `metadata` matches the migration.
sa.Index("idempotency_keys_expires_at", idempotency_keys.c.expires_at)


def create_idempotency_table_v1(op: Any) -> None:
    """Called from a service's Alembic migration (`op` is alembic.op)."""
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("request_hash", sa.LargeBinary, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("claim_token", sa.Text, nullable=False),
        sa.Column("response", sa.LargeBinary),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('IN_PROGRESS', 'COMPLETED')", name="idempotency_keys_state"),
        sa.CheckConstraint(
            "state = 'IN_PROGRESS' OR response IS NOT NULL", name="idempotency_keys_completed_has_response"
        ),
        sa.CheckConstraint("char_length(key) <= 128", name="idempotency_keys_key_length"),
        sa.CheckConstraint("octet_length(request_hash) = 32", name="idempotency_keys_request_hash_length"),
    )
    # The janitor deletes by expiry in batches; without the index each batch scans the table.
    op.create_index("idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])
