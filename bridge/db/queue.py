"""Claiming due rows of a queue table (notice, push_delivery): the lease every worker takes.

A claim selects due rows (`status` open and `next_attempt_at` reached), oldest due first,
and in the same transaction moves their `next_attempt_at` forward by the lease and counts
the attempt; on PostgreSQL the select skips rows other instances hold (`SKIP LOCKED`).
A crash lets the lease run out and the rows are due again. (Orders use their own claim:
express first, through a partial index; see `bridge.mt.orders.claim_orders`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Table, select, update

OPEN = ("queued", "deferred")


def claim_due(
    conn: Connection, table: Table, now: datetime, limit: int, lease: float
) -> Sequence[Row[Any]]:
    """Claim up to `limit` due rows of `table`; each row shows its attempts before this one."""
    query = (
        select(table)
        .where(table.c.status.in_(OPEN), table.c.next_attempt_at <= now)
        .order_by(table.c.next_attempt_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = conn.execute(query).all()
    if rows:
        conn.execute(
            update(table)
            .where(table.c.id.in_([r.id for r in rows]))
            .values(next_attempt_at=now + timedelta(seconds=lease), attempts=table.c.attempts + 1)
        )
    return rows
