"""intake: DSN parameters, credentials, dedupe; status push target; open-order index

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mail") as batch:
        batch.add_column(sa.Column("dsn_ret", sa.String(), nullable=True))
        batch.add_column(sa.Column("dsn_envid", sa.String(), nullable=True))
        batch.add_column(sa.Column("dedupe_key", sa.String(), nullable=True))
        batch.create_index("ix_mail_dedupe_key", ["dedupe_key"])
    with op.batch_alter_table("order") as batch:
        batch.add_column(sa.Column("dsn_notify", sa.String(), nullable=True))
        batch.add_column(sa.Column("dsn_orcpt", sa.String(), nullable=True))
        batch.add_column(
            sa.Column("delay_notified", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "credential",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_credential_username", "credential", ["username"], unique=True)
    op.create_index("ix_credential_customer_id", "credential", ["customer_id"])
    with op.batch_alter_table("inbound_customer") as batch:
        batch.add_column(sa.Column("status_push", sa.JSON(), nullable=True))
    open_orders = sa.text("status IN ('queued', 'deferred')")
    op.create_index(
        "ix_order_open",
        "order",
        ["priority", "next_attempt_at"],
        sqlite_where=open_orders,
        postgresql_where=open_orders,
    )


def downgrade() -> None:
    op.drop_index("ix_order_open", table_name="order")
    with op.batch_alter_table("inbound_customer") as batch:
        batch.drop_column("status_push")
    op.drop_index("ix_credential_customer_id", table_name="credential")
    op.drop_index("ix_credential_username", table_name="credential")
    op.drop_table("credential")
    with op.batch_alter_table("order") as batch:
        batch.drop_column("delay_notified")
        batch.drop_column("dsn_orcpt")
        batch.drop_column("dsn_notify")
    with op.batch_alter_table("mail") as batch:
        batch.drop_index("ix_mail_dedupe_key")
        batch.drop_column("dedupe_key")
        batch.drop_column("dsn_envid")
        batch.drop_column("dsn_ret")
