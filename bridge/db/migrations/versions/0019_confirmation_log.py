"""confirmation_log: when a number last confirmed a STOP or START to a sender

STOP/START confirmations are limited per our number and sender as auto-replies are
(`autoreply_log`), each in a table of its own, so that the two do not hold each other
back.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "confirmation_log",
        sa.Column("number", AutoString(), nullable=False),
        sa.Column("msisdn", AutoString(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", "msisdn"),
    )


def downgrade() -> None:
    op.drop_table("confirmation_log")
