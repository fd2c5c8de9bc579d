"""Bulk inserts for big batches (a list mail's 100,000 orders): the driver's executemany.

SQLAlchemy's executemany runs every bind processor for every row (datetime and JSON
columns cost most); here each column's processor runs once per distinct value object
(a list mail's orders share their times and their policy dict), and the rows go to the
driver's `executemany` directly. Same SQL and the same stored values as `insert()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert

BATCH = 20_000


def _default(table: Table, name: str) -> Any:
    """A column default the rows do not give (computed once for the whole batch)."""
    default = table.c[name].default
    if default is None:
        return None
    if getattr(default, "is_callable", False):
        return default.arg(None)  # type: ignore[attr-defined]
    return getattr(default, "arg", None)


def bulk_insert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into `table`."""
    if not rows:
        return
    dialect = conn.dialect
    compiled = insert(table).compile(dialect=dialect, column_keys=list(rows[0]))
    names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.params)
    procs = [table.c[n].type._cached_bind_processor(dialect) for n in names]
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
    params: list[Any] = (
        tuples if compiled.positional else [dict(zip(names, t, strict=True)) for t in tuples]
    )
    sql = str(compiled)
    for start in range(0, len(params), BATCH):
        conn.exec_driver_sql(sql, params[start : start + BATCH])
