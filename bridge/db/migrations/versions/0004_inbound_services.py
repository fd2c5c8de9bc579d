"""inbound services: numbers, keywords, stop lists, reply assignments, push

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString as _S

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _T() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _col(name: str, type_: object, **kw: object) -> sa.Column:  # type: ignore[type-arg]
    kw.setdefault("nullable", False)
    return sa.Column(name, type_, **kw)  # type: ignore[arg-type]


def upgrade() -> None:
    op.create_table(
        "inbound_customer",
        _col("customer_id", sa.Integer(), primary_key=True),
        _col("postmaster", _S()),
        _col("admin", _S()),
        _col("stop_scope", _S()),
        _col("updated_at", _T()),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
    )
    op.create_table(
        "inbound_number",
        _col("id", sa.Integer(), primary_key=True),
        _col("number", _S()),
        _col("customer_id", sa.Integer()),
        _col("sharing", _S()),
        _col("fallback", sa.JSON()),
        _col("config", sa.JSON()),
        _col("updated_at", _T()),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.UniqueConstraint("number", "customer_id"),
    )
    op.create_index("ix_inbound_number_number", "inbound_number", ["number"])
    op.create_index("ix_inbound_number_customer_id", "inbound_number", ["customer_id"])
    op.create_table(
        "reply_assignment",
        _col("id", sa.Integer(), primary_key=True),
        _col("msisdn", _S()),
        _col("sender_id", _S()),
        _col("customer_id", sa.Integer()),
        _col("user_id", sa.Integer()),
        _col("address", _S()),
        _col("origin", _S()),
        _col("order_id", _S(), nullable=True),
        _col("message_id", _S()),
        _col("subject", _S()),
        _col("text", _S()),
        _col("created_at", _T()),
        _col("expires_at", _T()),
    )
    op.create_index("ix_reply_assignment_msisdn", "reply_assignment", ["msisdn", "created_at"])
    op.create_index("ix_reply_assignment_customer_id", "reply_assignment", ["customer_id"])
    op.create_index("ix_reply_assignment_user_id", "reply_assignment", ["user_id"])
    op.create_table(
        "stop_entry",
        _col("id", sa.Integer(), primary_key=True),
        _col("customer_id", sa.Integer()),
        _col("msisdn", _S()),
        _col("service", _S()),
        _col("origin", _S()),
        _col("created_at", _T()),
        sa.UniqueConstraint("customer_id", "msisdn", "service"),
    )
    op.create_index("ix_stop_entry_customer_id", "stop_entry", ["customer_id"])
    op.create_index("ix_stop_entry_msisdn", "stop_entry", ["msisdn"])
    op.create_table(
        "autoreply_log",
        _col("number", _S(), primary_key=True),
        _col("msisdn", _S(), primary_key=True),
        _col("last_at", _T()),
    )
    op.create_table(
        "inbound_list",
        _col("id", sa.Integer(), primary_key=True),
        _col("customer_id", sa.Integer()),
        _col("name", _S()),
        _col("export_to", sa.JSON()),
        _col("export_at", _S()),
        _col("export_mode", _S()),
        _col("only_if_changed", sa.Boolean()),
        _col("last_export_at", _T(), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.UniqueConstraint("customer_id", "name"),
    )
    op.create_index("ix_inbound_list_customer_id", "inbound_list", ["customer_id"])
    op.create_table(
        "list_member",
        _col("id", sa.Integer(), primary_key=True),
        _col("list_id", sa.Integer()),
        _col("msisdn", _S()),
        _col("status", _S()),
        _col("joined_at", _T()),
        _col("changed_at", _T()),
        sa.ForeignKeyConstraint(["list_id"], ["inbound_list.id"]),
        sa.UniqueConstraint("list_id", "msisdn"),
    )
    op.create_index("ix_list_member_list_id", "list_member", ["list_id"])
    op.create_table(
        "push_delivery",
        _col("id", sa.Integer(), primary_key=True),
        _col("customer_id", sa.Integer()),
        _col("inbound_id", sa.Integer(), nullable=True),
        _col("target", sa.JSON()),
        _col("body", _S()),
        _col("content_type", _S()),
        _col("status", _S()),
        _col("attempts", sa.Integer()),
        _col("next_attempt_at", _T()),
        _col("created_at", _T()),
        _col("give_up_at", _T()),
        _col("sent_at", _T(), nullable=True),
        _col("error", _S()),
    )
    op.create_index("ix_push_due", "push_delivery", ["status", "next_attempt_at"])
    op.create_index("ix_push_delivery_customer_id", "push_delivery", ["customer_id"])


def downgrade() -> None:
    for table in (
        "push_delivery",
        "list_member",
        "inbound_list",
        "autoreply_log",
        "stop_entry",
        "reply_assignment",
        "inbound_number",
        "inbound_customer",
    ):
        op.drop_table(table)
