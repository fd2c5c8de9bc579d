"""order.cause, order.cause_code: why an order failed for good, as a word and a code

A failed order's DSN says why in its status code (RFC 3463): an unknown number, a refused
sender, an expired validity. The reason text in `error` stays for people; these columns
keep the cause in a form the DSN can read: the cause in a word and, for an SMSC's refusal,
its SMPP command_status. Orders that failed before have none: their DSNs say what they
said before (5.0.0, or 5.4.7 for an expired order).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("order") as batch:
        batch.add_column(sa.Column("cause", sa.String(), nullable=False, server_default=""))
        batch.add_column(sa.Column("cause_code", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("order") as batch:
        batch.drop_column("cause_code")
        batch.drop_column("cause")
