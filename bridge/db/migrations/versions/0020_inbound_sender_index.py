"""inbound sender index: a sender's SMS to one of our numbers since a time, by one seek

The MO limit (`[inbound] mo_limit`) counts, for every inbound SMS, the sender's earlier
SMS to the same number within a window: (source, destination, received_at, id) reads
just those, where the index on source alone read every SMS the sender ever sent (a
flood's too). It replaces that index: the lists by the texter's number use its first
column.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_inbound_sender", "inbound", ["source", "destination", "received_at", "id"])
    op.drop_index("ix_inbound_source", table_name="inbound")


def downgrade() -> None:
    op.create_index("ix_inbound_source", "inbound", ["source"])
    op.drop_index("ix_inbound_sender", table_name="inbound")
