"""Statements run many times with the driver's executemany: bulk inserts (a list mail's
100,000 orders) and the hot statements of every mail (a submit's status update, its
part and history rows, a receipt's part update).

SQLAlchemy's executemany runs every bind processor for every row (datetime and JSON
columns cost most) and prepares each execution again (compiled-cache lookup, parameter
construction, a result object); here a statement is compiled once per dialect and
parameter names, each bind processor runs once per distinct value object (a batch's
rows share their times, a list mail's orders their policy dict), and the rows go to the
driver's `executemany` directly. Same SQL and the same stored values as `conn.execute`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Dialect, Table, UpdateBase, insert

BATCH = 20_000


def _default(table: Table, name: str) -> Any:
    """A column default the rows do not give (computed once for the whole batch)."""
    default = table.c[name].default
    if default is None:
        return None
    if getattr(default, "is_callable", False):
        return default.arg(None)  # type: ignore[attr-defined]
    return getattr(default, "arg", None)


@functools.lru_cache(maxsize=64)  # a few tables, each with one or two column sets
def _plan(table: Table, dialect: Dialect, keys: tuple[str, ...]) -> _Plan:
    """The INSERT for `keys` compiled once per table, dialect and column set (compiling
    costs more than inserting a few rows): its SQL, positional or not, its column names in
    parameter order and their bind processors."""
    compiled = insert(table).compile(dialect=dialect, column_keys=list(keys))
    names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.params)
    procs = [table.c[n].type._cached_bind_processor(dialect) for n in names]
    return _Plan(str(compiled), compiled.positional, tuple(names), tuple(procs))


@functools.lru_cache(maxsize=128)  # the statements built once in the domains' modules
def _statement_plan(statement: UpdateBase, dialect: Dialect, keys: tuple[str, ...]) -> _Plan:
    """`statement` compiled once per dialect and parameter names, like `_plan`; the values
    its own bind parameters carry (a status it sets, the statuses it matches) are fixed."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    binds = {name: bind for bind, name in compiled.bind_names.items()}
    if (
        compiled.effective_returning
        or compiled.insert_prefetch
        or compiled.update_prefetch
        or any(b.expanding or b.literal_execute or b.callable for b in binds.values())
    ):
        raise ValueError(f"not for bulk_execute (defaults, RETURNING or IN lists): {statement}")
    names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.params)
    fixed = {n: v for n, v in compiled.params.items() if n not in keys and not binds[n].required}
    procs = [binds[n].type._cached_bind_processor(dialect) for n in names]
    return _Plan(str(compiled), compiled.positional, tuple(names), tuple(procs), fixed)


class _Plan(NamedTuple):
    sql: str
    positional: bool
    names: tuple[str, ...]
    procs: tuple[Callable[[Any], Any] | None, ...]
    fixed: dict[str, Any] | None = None  # values for the names the rows do not give


def bulk_insert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into `table`."""
    if not rows:
        return
    plan = _plan(table, conn.dialect, tuple(rows[0]))
    fixed = {n: _default(table, n) for n in plan.names if n not in rows[0]}
    _run(conn, plan, fixed, rows)


def bulk_execute(conn: Connection, statement: UpdateBase, rows: Sequence[dict[str, Any]]) -> int:
    """Run `statement` (an UPDATE, DELETE or INSERT … SELECT built once, without IN lists,
    RETURNING or column defaults to compute) once for each of `rows` (dicts of its
    parameters, with the same keys), in order; returns the rows it matched in all."""
    if not rows:
        return 0
    plan = _statement_plan(statement, conn.dialect, tuple(rows[0]))
    return _run(conn, plan, plan.fixed or {}, rows)


def _run(
    conn: Connection, plan: _Plan, fixed: dict[str, Any], rows: Sequence[dict[str, Any]]
) -> int:
    columns: list[list[Any]] = []
    for name, proc in zip(plan.names, plan.procs, strict=True):
        raw = [row[name] for row in rows] if name in rows[0] else [fixed[name]] * len(rows)
        if proc is not None:
            memo: dict[int, Any] = {}  # shared objects (times, policy dicts) processed once
            for i, v in enumerate(raw):
                if v is not None:
                    key = id(v)
                    if key not in memo:
                        memo[key] = proc(v)
                    raw[i] = memo[key]
        columns.append(raw)
    tuples = list(zip(*columns, strict=True))
    params: list[Any] = (
        tuples if plan.positional else [dict(zip(plan.names, t, strict=True)) for t in tuples]
    )
    count = 0
    for start in range(0, len(params), BATCH):
        count += conn.exec_driver_sql(plan.sql, params[start : start + BATCH]).rowcount
    return count
