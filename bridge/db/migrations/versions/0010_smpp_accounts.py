"""smpp accounts: the SMPP server's accounts, unfinished messages' parts, the outbox to clients

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "smpp_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.String(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("networks", sa.JSON(), nullable=False),
        sa.Column("bind_types", sa.JSON(), nullable=False),
        sa.Column("senders", sa.JSON(), nullable=False),
        sa.Column("max_binds", sa.Integer(), nullable=False),
        sa.Column("window", sa.Integer(), nullable=False),
        sa.Column("throughput", sa.Float(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("system_id"),
    )
    op.create_index("ix_smpp_account_customer_id", "smpp_account", ["customer_id"])
    op.create_table(
        "smpp_part",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.String(), nullable=False),
        sa.Column("part_key", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("mail_id", sa.String(), nullable=False),
        sa.Column("part", sa.JSON(), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("encoding", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_smpp_part_key", "smpp_part", ["system_id", "part_key"])
    op.create_table(
        "smpp_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("message_key", sa.String(), nullable=False),
        sa.Column("pdu", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_smpp_outbox_due", "smpp_outbox", ["system_id", "status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_smpp_outbox_due", table_name="smpp_outbox")
    op.drop_table("smpp_outbox")
    op.drop_index("ix_smpp_part_key", table_name="smpp_part")
    op.drop_table("smpp_part")
    op.drop_index("ix_smpp_account_customer_id", table_name="smpp_account")
    op.drop_table("smpp_account")
