"""channel accounts: each channel's configuration (ids, keys, certificates), encrypted at rest

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_accounts",
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        # AES-256-GCM (nonce || ciphertext+tag) of the JSON config, the channel name as
        # associated data: a row copied under another channel's name does not decrypt.
        sa.Column("config_sealed", sa.LargeBinary, nullable=False),
        # Which key sealed it (a fingerprint, not the key): a wrong key is named at start-up.
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("channel_accounts")
