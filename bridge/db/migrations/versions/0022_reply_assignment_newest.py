"""reply assignments: a number's newest assignments in the order they are read

An inbound SMS's reply goes to the newest assignments of its sender's number (from the
number it was sent to, or any): `ORDER BY created_at DESC, id DESC LIMIT 50`. The two
indexes on (msisdn, created_at) and (msisdn, sender_id, created_at) now end with `id`,
so that a scan of either gives the rows in that order and stops at the limit. Without
it, the plan PostgreSQL may make once for any parameters (a statement psycopg has
prepared) read and sorted every assignment of the number in the reply window
(tests/integration/test_history_scaling.py, generic plans).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_reply_assignment_msisdn", table_name="reply_assignment")
    op.create_index(
        "ix_reply_assignment_msisdn", "reply_assignment", ["msisdn", "created_at", "id"]
    )
    op.drop_index("ix_reply_assignment_sender", table_name="reply_assignment")
    op.create_index(
        "ix_reply_assignment_sender",
        "reply_assignment",
        ["msisdn", "sender_id", "created_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_reply_assignment_sender", table_name="reply_assignment")
    op.create_index(
        "ix_reply_assignment_sender", "reply_assignment", ["msisdn", "sender_id", "created_at"]
    )
    op.drop_index("ix_reply_assignment_msisdn", table_name="reply_assignment")
    op.create_index("ix_reply_assignment_msisdn", "reply_assignment", ["msisdn", "created_at"])
