"""message ids: parts without a unique SMSC id, submit time and matchable flag; receipt deadlines

SMSC message ids are not unique, so the unique constraint on (transport, smsc_id) goes
(a duplicate id made a whole dispatch batch roll back after the SMSC had accepted it,
and the orders were submitted again and again). Parts get `submitted_at` (receipts match
the most recent part submitted before them) and `matchable`. Submitted orders get their
receipt deadline in `next_attempt_at`: the end of their validity plus one hour.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNIQUE_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
_DEFAULT_VALIDITY = timedelta(hours=48)
_GRACE = timedelta(hours=1)


def _unique_name(bind: sa.Connection) -> str | None:
    for uc in sa.inspect(bind).get_unique_constraints("part"):
        if sorted(uc["column_names"]) == ["smsc_id", "transport"]:
            return uc["name"] or "uq_part_transport"
    return None


def upgrade() -> None:
    bind = op.get_bind()
    name = _unique_name(bind)
    with op.batch_alter_table("part", naming_convention=_UNIQUE_NAMING) as batch:
        if name is not None:
            batch.drop_constraint(name, type_="unique")
        batch.add_column(sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("matchable", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    part = sa.table(
        "part",
        sa.column("submitted_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    op.execute(part.update().values(submitted_at=part.c.updated_at))
    with op.batch_alter_table("part") as batch:
        batch.alter_column("submitted_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.create_index("ix_part_smsc", ["transport", "smsc_id", "submitted_at"])
    # Orders waiting for receipts get a deadline (before, their next_attempt_at was the
    # end of the claim's lease, which would end them all at once).
    order = sa.table(
        "order",
        sa.column("id", sa.String()),
        sa.column("status", sa.String()),
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("expires_at", sa.DateTime(timezone=True)),
        sa.column("next_attempt_at", sa.DateTime(timezone=True)),
    )
    rows = bind.execute(
        sa.select(order.c.id, order.c.updated_at, order.c.expires_at).where(
            order.c.status == "submitted"
        )
    ).all()
    for r in rows:
        end = r.expires_at or r.updated_at + _DEFAULT_VALIDITY
        bind.execute(order.update().where(order.c.id == r.id).values(next_attempt_at=end + _GRACE))


def downgrade() -> None:
    with op.batch_alter_table("part", naming_convention=_UNIQUE_NAMING) as batch:
        batch.drop_index("ix_part_smsc")
        batch.drop_column("matchable")
        batch.drop_column("submitted_at")
        # Fails when the SMSC gave the same id twice: those rows cannot go back.
        batch.create_unique_constraint("uq_part_transport", ["transport", "smsc_id"])
