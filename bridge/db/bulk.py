"""Bulk inserts for big batches (a list mail's 100,000 orders): the driver's executemany.

SQLAlchemy's executemany runs every bind processor for every row (datetime and JSON
columns cost most); here each column's processor runs once per distinct value object
(a list mail's orders share their times and their policy dict), and the rows go to the
driver's `executemany` directly. Same SQL and the same stored values as `insert()`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Dialect, Table, insert

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


class _Plan(NamedTuple):
    sql: str
    positional: bool
    names: tuple[str, ...]
    procs: tuple[Callable[[Any], Any] | None, ...]


def bulk_insert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into `table`."""
    if not rows:
        return
    sql, positional, names, procs = _plan(table, conn.dialect, tuple(rows[0]))
    fixed = {n: _default(table, n) for n in names if n not in rows[0]}
    columns: list[list[Any]] = []
    for name, proc in zip(names, procs, strict=True):
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
    params: list[Any] = tuples if positional else [dict(zip(names, t, strict=True)) for t in tuples]
    for start in range(0, len(params), BATCH):
        conn.exec_driver_sql(sql, params[start : start + BATCH])
