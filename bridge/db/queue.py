"""Claiming due rows of a queue table: the one lease every worker takes (orders, notices,
pushes, inbound SMS).

A queue is a table with `status` and `next_attempt_at`. A claim selects due rows (open and
`next_attempt_at` reached), lane by lane (express orders before normal ones), oldest due
first, and in the same transaction moves their `next_attempt_at` forward by the lease (and
counts the attempt where the table counts them); on PostgreSQL the select skips rows other
instances hold (`SKIP LOCKED`). The work runs outside the transaction; a crash lets the
lease run out and the rows are due again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Table, TextClause, select, true, update


@dataclass(frozen=True)
class Queue:
    """How to claim from one queue table."""

    table: Table
    # The open rows: for a table with a partial index, its predicate written the same way.
    open: ColumnElement[bool] | TextClause
    # Claimed one after the other until `limit` rows are found (e.g. express, then normal).
    lanes: tuple[ColumnElement[bool], ...] = (true(),)
    counts_attempts: bool = True  # the claim counts the attempt in `attempts`
    touch: tuple[str, ...] = field(default=())  # time columns the claim also sets to now


def claim(
    conn: Connection,
    queue: Queue,
    now: datetime,
    limit: int,
    lease: float,
    where: Sequence[ColumnElement[bool]] = (),
) -> list[Row[Any]]:
    """Claim up to `limit` due rows; each row shows its attempts before this one.

    `where` narrows this claim (dispatch leaves out routes whose SMSC has no room).
    """
    t = queue.table
    rows: list[Row[Any]] = []
    for lane in queue.lanes:
        if len(rows) >= limit:
            break
        query = (
            select(t)
            .where(queue.open, lane, t.c.next_attempt_at <= now, *where)
            .order_by(t.c.next_attempt_at)
            .limit(limit - len(rows))
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows.extend(conn.execute(query).all())
    if rows:
        values: dict[str, Any] = {"next_attempt_at": now + timedelta(seconds=lease)}
        if queue.counts_attempts:
            values["attempts"] = t.c.attempts + 1
        values.update(dict.fromkeys(queue.touch, now))
        conn.execute(update(t).where(t.c.id.in_([r.id for r in rows])).values(**values))
    return rows
