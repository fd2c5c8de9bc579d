"""smpp_part.message: what an unfinished concatenated message's order would be

A part of a concatenated message keeps the mail and order facts its submit_sm made, so
that a message whose other parts never come becomes a failed order (with the client's
receipt) instead of rows that are dropped. Rows written before have none: they are
dropped as before.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("smpp_part") as batch:
        batch.add_column(sa.Column("message", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("smpp_part") as batch:
        batch.drop_column("message")
