"""conversation index: a user's newest assignment with a number found by one index seek

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_reply_assignment_conversation",
        "reply_assignment",
        ["msisdn", "user_id", "created_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_reply_assignment_conversation", table_name="reply_assignment")
