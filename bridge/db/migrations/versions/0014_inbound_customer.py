"""inbound customer: whose number or keyword took each MO, and how it was routed

Rows received before this revision belong to nobody (customer_id NULL): which customer a
shared number's message belonged to was not kept, so none is guessed.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbound", schema=None) as batch:
        batch.add_column(sa.Column("customer_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("route", sa.String(), nullable=False, server_default=""))
        batch.add_column(sa.Column("keyword", sa.String(), nullable=False, server_default=""))
        batch.create_index("ix_inbound_customer", ["customer_id", "received_at"])


def downgrade() -> None:
    with op.batch_alter_table("inbound", schema=None) as batch:
        batch.drop_index("ix_inbound_customer")
        batch.drop_column("keyword")
        batch.drop_column("route")
        batch.drop_column("customer_id")
