"""history indexes: the per-mail reads seek their rows instead of reading the history

A user's orders since a time (the rate limits) by (user_id, created_at), replacing the
index on user_id alone; the orders an SMSC may still hold by recipient and sender (a
resubmit's replace), a partial index of the unfinished orders; a texter's newest reply
assignments from one sender (an inbound SMS's reply) by (msisdn, sender_id, created_at).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNFINISHED_ORDERS = "status IN ('queued', 'deferred', 'submitted', 'held')"


def upgrade() -> None:
    op.create_index("ix_order_user_created", "order", ["user_id", "created_at"])
    op.drop_index("ix_order_user_id", table_name="order")
    op.create_index(
        "ix_order_unfinished",
        "order",
        ["recipient", "sender_id"],
        sqlite_where=sa.text(UNFINISHED_ORDERS),
        postgresql_where=sa.text(UNFINISHED_ORDERS),
    )
    op.create_index(
        "ix_reply_assignment_sender", "reply_assignment", ["msisdn", "sender_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_reply_assignment_sender", table_name="reply_assignment")
    op.drop_index("ix_order_unfinished", table_name="order")
    op.create_index("ix_order_user_id", "order", ["user_id"])
    op.drop_index("ix_order_user_created", table_name="order")
