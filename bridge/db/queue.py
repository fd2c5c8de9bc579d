"""Claiming due rows of a queue table: the one lease every worker takes (orders, notices,
pushes, inbound SMS).

A queue is a table with `status` and `next_attempt_at`. A claim selects due rows (open and
`next_attempt_at` reached), lane by lane (express orders before normal ones), oldest due
first, and in the same transaction moves their `next_attempt_at` forward by the lease (and
counts the attempt where the table counts them). The move is conditional: only rows still
open and still due are moved, and only those are returned, so two claimers never both
get a row while its lease runs — on PostgreSQL the select also skips rows other
instances hold (`SKIP LOCKED`); on SQLite, where several processes of one bridge share
the file and the select runs before the write lock is taken, the condition is what keeps
a row that another process claimed in between out of this claim. The work runs outside
the transaction; a crash lets the lease run out and the rows are due again.

The lanes are read by one statement (`_lanes`: each lane's select, at most `limit` rows
in the queue's order, joined by `UNION ALL` under the claim's `limit`): both databases
read the branches in turn and stop at the `limit`th row, so a lane is read only while
the lanes before it gave fewer, as a select per lane would, in one round trip instead of
one per lane (on PostgreSQL each branch locks only the rows it gives: a locking query is
never run in parallel, and its branches are read in order).

Statements are built once per queue and dialect (building one costs more CPU than
running it) and run on the driver (`bridge.db.prepared`); a claim narrowed by `where`
builds its own select per lane.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Executable,
    Select,
    Table,
    TextClause,
    Update,
    bindparam,
    func,
    select,
    true,
    union_all,
    update,
)

from bridge.db import prepared


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
    # The columns a claim returns (with `id`); empty: all (each value read costs CPU).
    columns: tuple[str, ...] = field(default=())
    # A claim takes the rows of one value of this column (`claim(..., per=)`): the SMPP
    # outbox's rows of one account.
    per: str | None = None
    # What a row needs besides being open and due, checked by the select and again by the
    # take (the SMPP outbox: no earlier row of its message still unsent).
    ready: ColumnElement[bool] = field(default_factory=true)
    # The order rows are claimed in; an index on the open rows ends in these columns.
    order: tuple[str, ...] = ("next_attempt_at",)
    # Statements built once: ("lanes" or "take", dialect) -> statement.
    _built: dict[tuple[str, str], Executable] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )


def _select(
    queue: Queue, lane: ColumnElement[bool], dialect: str, where: Sequence[ColumnElement[bool]]
) -> Select[Any]:
    t = queue.table
    columns = [t.c.id, *(t.c[n] for n in queue.columns if n != "id")] if queue.columns else [t]
    if queue.per is not None:
        where = (t.c[queue.per] == bindparam("per"), *where)
    query = (
        select(*columns)
        .where(queue.open, lane, t.c.next_attempt_at <= bindparam("now"), queue.ready, *where)
        .order_by(*(t.c[n] for n in queue.order))
        .limit(bindparam("limit"))
    )
    if dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return query


def _lanes(queue: Queue, dialect: str) -> CompoundSelect[Any]:
    """Every lane's select (`_select`) in one statement, lane after lane, `limit` rows in
    all (the module's docstring)."""
    branches = [
        select(*_select(queue, lane, dialect, ()).subquery(f"lane{n}").c)
        for n, lane in enumerate(queue.lanes)
    ]
    return union_all(*branches).limit(bindparam("limit"))


def _take_values(queue: Queue, statement: Update) -> Update:
    """The lease a take writes: the lease's end, the attempt counted, the touched times."""
    t = queue.table
    values: dict[str, Any] = {"next_attempt_at": bindparam("until")}
    if queue.counts_attempts:
        values["attempts"] = t.c.attempts + 1
    values.update(dict.fromkeys(queue.touch, bindparam("now")))
    return statement.values(**values)


def _take(queue: Queue) -> Executable:
    """Lease the selected rows that are still open and due; returns the ids it leased."""
    t = queue.table
    return (
        _take_values(queue, update(t))
        .where(
            t.c.id.in_(bindparam("ids", expanding=True)),
            queue.open,
            t.c.next_attempt_at <= bindparam("now"),
            queue.ready,
        )
        .returning(t.c.id)
    )


def _claim_postgres(queue: Queue, picked: Select[Any] | CompoundSelect[Any]) -> Executable:
    """PostgreSQL's claim as one statement: the lanes' select (`picked`, its rows locked,
    numbered in the order it gives them), the take as a data-modifying `WITH` over them,
    and the picked rows the take leased, in the select's order."""
    t = queue.table
    lanes = picked.subquery("lanes")
    numbered = select(*lanes.c, func.row_number().over().label("claim_n")).cte("picked")
    taken = (
        _take_values(queue, update(t))
        .where(
            t.c.id == numbered.c.id,
            queue.open,
            t.c.next_attempt_at <= bindparam("now"),
            queue.ready,
        )
        .returning(t.c.id)
        .cte("taken")
    )
    return (
        select(*(c for c in numbered.c if c.name != "claim_n"))
        .where(numbered.c.id.in_(select(taken.c.id)))
        .order_by(numbered.c.claim_n)
    )


def claim(
    conn: Connection,
    queue: Queue,
    now: datetime,
    limit: int,
    lease: float,
    where: Sequence[ColumnElement[bool]] = (),
    per: object = None,
) -> list[Any]:
    """Claim up to `limit` due rows; each row shows its attempts before this one.

    `where` narrows this claim (dispatch leaves out routes whose SMSC has no room); `per`
    is the value of the queue's `per` column whose rows it claims.
    """
    dialect = conn.dialect.name
    rows: list[Any] = []
    if limit <= 0:
        return rows
    values: dict[str, Any] = {"now": now, "limit": limit}
    if queue.per is not None:
        values["per"] = per
    if where:  # a statement of its own per lane: not worth a plan
        for lane in queue.lanes:
            if len(rows) >= limit:
                break
            values["limit"] = limit - len(rows)
            rows.extend(conn.execute(_select(queue, lane, dialect, where), values).all())
    else:
        query = queue._built.get(("lanes", dialect))
        if query is None:
            lanes: Select[Any] | CompoundSelect[Any] = (
                _select(queue, queue.lanes[0], dialect, ())
                if len(queue.lanes) == 1
                else _lanes(queue, dialect)
            )
            query = _claim_postgres(queue, lanes) if dialect == "postgresql" else lanes
            queue._built[("lanes", dialect)] = query
        if dialect == "postgresql":  # the select and the take in one statement
            values["until"] = now + timedelta(seconds=lease)
            return prepared.fetch(conn, query, values)
        rows = prepared.fetch(conn, query, values)
    if not rows:
        return rows
    take = queue._built.get(("take", dialect))
    if take is None:
        take = queue._built[("take", dialect)] = _take(queue)
    params = {"ids": [r.id for r in rows], "now": now, "until": now + timedelta(seconds=lease)}
    taken = {r[0] for r in prepared.fetch(conn, take, params)}
    if len(taken) < len(rows):  # another process claimed some of them since the select
        rows = [r for r in rows if r.id in taken]
    return rows
