"""settings cascade: distribution lists, list mails, monthly report archive

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_S = sa.String


def _T() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _col(name: str, type_: object, **kw: object) -> sa.Column:  # type: ignore[type-arg]
    kw.setdefault("nullable", False)
    return sa.Column(name, type_, **kw)  # type: ignore[arg-type]


def upgrade() -> None:
    op.create_table(
        "distribution_list",
        _col("id", sa.Integer(), primary_key=True),
        _col("customer_id", sa.Integer()),
        _col("name", _S()),
        _col("description", _S()),
        _col("fields", sa.JSON()),
        _col("created_at", _T()),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.UniqueConstraint("customer_id", "name"),
    )
    op.create_index("ix_distribution_list_customer_id", "distribution_list", ["customer_id"])
    op.create_table(
        "distribution_member",
        _col("id", sa.Integer(), primary_key=True),
        _col("list_id", sa.Integer()),
        _col("msisdn", _S()),
        _col("first_name", _S()),
        _col("last_name", _S()),
        _col("fields", sa.JSON()),
        _col("created_at", _T()),
        sa.ForeignKeyConstraint(["list_id"], ["distribution_list.id"]),
        sa.UniqueConstraint("list_id", "msisdn"),
    )
    op.create_index("ix_distribution_member_list_id", "distribution_member", ["list_id"])
    op.create_table(
        "list_mail",
        _col("mail_id", _S(), primary_key=True),
        _col("lists", sa.JSON()),
        _col("members", sa.Integer()),
        _col("skipped", sa.JSON()),
        _col("reported_at", _T(), nullable=True),
        sa.ForeignKeyConstraint(["mail_id"], ["mail.id"]),
    )
    op.create_table(
        "monthly_report",
        _col("id", sa.Integer(), primary_key=True),
        _col("customer_id", sa.Integer()),
        _col("month", _S()),
        _col("generated_at", _T()),
        _col("summary", sa.JSON()),
        _col("csv", sa.Text()),
        _col("mailed_at", _T(), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.UniqueConstraint("customer_id", "month"),
    )
    op.create_index("ix_monthly_report_customer_id", "monthly_report", ["customer_id"])
    # report filters: period and user
    op.create_index("ix_order_created_at", "order", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_order_created_at", "order")
    op.drop_index("ix_monthly_report_customer_id", "monthly_report")
    op.drop_table("monthly_report")
    op.drop_table("list_mail")
    op.drop_index("ix_distribution_member_list_id", "distribution_member")
    op.drop_table("distribution_member")
    op.drop_index("ix_distribution_list_customer_id", "distribution_list")
    op.drop_table("distribution_list")
