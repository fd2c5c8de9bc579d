"""SMPP outbox: a take seeks in the queued rows of an account and of a message

A take (`bridge.smpp_outbox.queue.take_due`) reads an account's queued rows oldest due
first and keeps a row back while an earlier row of its message to the account is
unsent. Its index on (system_id, status, next_attempt_at) now ends in `id`, the order
rows are taken in, and a new index on (message_key, status, id) answers whether an
earlier row of a message is unsent. Before, the take read the account's rows in id
order and every queued row's message again, and a plan made once for any parameters,
or SQLite's after ANALYZE, read every deliver_sm ever sent
(tests/integration/test_history_scaling.py).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_smpp_outbox_due", table_name="smpp_outbox")
    op.create_index(
        "ix_smpp_outbox_due", "smpp_outbox", ["system_id", "status", "next_attempt_at", "id"]
    )
    op.create_index("ix_smpp_outbox_message", "smpp_outbox", ["message_key", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_smpp_outbox_message", table_name="smpp_outbox")
    op.drop_index("ix_smpp_outbox_due", table_name="smpp_outbox")
    op.create_index("ix_smpp_outbox_due", "smpp_outbox", ["system_id", "status", "next_attempt_at"])
