"""Statements run many times with the driver's executemany: bulk inserts (a list mail's
100,000 orders) and the hot statements of every mail (a submit's status update, its
part and history rows, a receipt's part update).

SQLAlchemy's executemany runs every bind processor for every row (datetime and JSON
columns cost most) and prepares each execution again (compiled-cache lookup, parameter
construction, a result object); here a statement is compiled once per dialect and
parameter names (`bridge.db.prepared`), each bind processor runs once per distinct value
object (a batch's rows share their times, a list mail's orders their policy dict), and
the rows go to the driver's `executemany` directly (on PostgreSQL one or two rows as
plain statements: psycopg runs every `executemany` in a pipeline, which costs more for
so few). On PostgreSQL an insert of several rows is one statement of several rows
(`INSERT … VALUES (…), (…)`). Same stored values as `conn.execute`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Dialect, Table, UpdateBase, insert

from bridge.db.prepared import Plan, compile_plan, drive

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
def _plan(table: Table, dialect: Dialect, keys: tuple[str, ...]) -> Plan:
    """The INSERT for `keys` compiled once per table, dialect and column set (compiling
    costs more than inserting a few rows); the columns the rows do not give take their
    defaults (`_default`). `inline`: without `RETURNING` of a generated key (PostgreSQL
    would send back the id of every history line, part and receipt, which nothing reads)."""
    return compile_plan(insert(table).inline(), dialect, keys, defaults=True)


@functools.lru_cache(maxsize=128)  # the statements built once in the domains' modules
def _statement_plan(statement: UpdateBase, dialect: Dialect, keys: tuple[str, ...]) -> Plan:
    """`statement` compiled once per dialect and parameter names, like `_plan`; the values
    its own bind parameters carry (a status it sets, the statuses it matches) are fixed."""
    plan = compile_plan(statement, dialect, keys)
    if plan.columns or plan.lists or any(n not in keys and n not in plan.fixed for n in plan.names):
        raise ValueError(f"not for bulk_execute (RETURNING or IN lists): {statement}")
    return plan


# PostgreSQL: the longest INSERT of several rows. psycopg converts a statement's `%s`
# marks to PostgreSQL's `$n` once and keeps the result only for a statement of at most 50
# parameters and 4,096 characters; a longer one is parsed again at every run, which cost
# more than the pipeline of one statement per row it replaces (`_per_insert`).
PARAMETERS_PER_INSERT = 50
CHARACTERS_PER_INSERT = 4096
_NAMED = re.compile(r"%\((\w+)\)s")


@functools.lru_cache(maxsize=128)  # a few tables, each with one or two column sets
def _per_insert(sql: str, names: tuple[str, ...]) -> tuple[str, str, int] | None:
    """For `sql`, an INSERT of one row whose values are named in `names`' order: the part
    before its values, one row's values with `%s` marks, and how many rows one statement
    may carry (`PARAMETERS_PER_INSERT`, `CHARACTERS_PER_INSERT`); None when it is not of
    that form or one row is all a statement may carry."""
    head, found, row = sql.rpartition(" VALUES ")
    if not found or not (row.startswith("(") and row.endswith(")")):
        return None
    if tuple(_NAMED.findall(row)) != names or "%" in _NAMED.sub("", row):
        return None
    marked = _NAMED.sub("%s", row)
    room = (CHARACTERS_PER_INSERT - len(head) - len(" VALUES ")) // (len(marked) + 2)
    rows = min(PARAMETERS_PER_INSERT // max(1, len(names)), room)
    return (f"{head} VALUES ", marked, rows) if rows >= 2 else None


def bulk_insert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into `table`.

    On PostgreSQL several rows go in one statement (`INSERT … VALUES (…), (…)`, as many
    as `_per_insert` allows): psycopg sends `executemany` as a pipeline of one statement
    per row, which for the few rows of a commit at a steady load cost the client about
    twice the CPU and the server a fifth more (bench/README.md, 2026-12-07)."""
    if not rows:
        return
    plan = _plan(table, conn.dialect, tuple(rows[0]))
    fixed = {n: _default(table, n) for n in plan.names if n not in rows[0]}
    shape = _per_insert(plan.sql, plan.names) if conn.dialect.name == "postgresql" else None
    if len(rows) == 1 or shape is None:
        _run(conn, plan, fixed, rows)
        return
    head, row, step = shape
    tuples = _tuples(plan, fixed, rows)
    for start in range(0, len(tuples), step):
        chunk = tuples[start : start + step]
        if len(chunk) == 1:
            _drive_rows(conn, plan, chunk)
            continue
        sql = head + ", ".join([row] * len(chunk))
        drive(conn, sql, tuple(value for values in chunk for value in values))


def insert_together(
    conn: Connection, inserts: Sequence[tuple[Table, Sequence[dict[str, Any]]]]
) -> None:
    """Insert rows into several tables, in the order given, as `bulk_insert` does each.

    On PostgreSQL the inserts go as one statement when they fit in one (`_per_insert`'s
    limits for them all): every insert but the last a data-modifying `WITH` of it,
    `WITH i0 AS (INSERT …), i1 AS (INSERT …) INSERT …`, one round trip where there were
    one per table (a mail, its order and the order's first history line at a steady
    load). A row may refer to a row another of them inserts (the order to its mail):
    the foreign keys are checked at the end of the statement, as at the end of each
    insert before."""
    inserts = [(table, rows) for table, rows in inserts if rows]
    sql = _together(conn, inserts) if conn.dialect.name == "postgresql" else None
    if sql is None:
        for table, rows in inserts:
            bulk_insert(conn, table, rows)
        return
    values: list[Any] = []
    for table, rows in inserts:
        plan = _plan(table, conn.dialect, tuple(rows[0]))
        fixed = {n: _default(table, n) for n in plan.names if n not in rows[0]}
        values += [value for row in _tuples(plan, fixed, rows) for value in row]
    drive(conn, sql, tuple(values))


def _together(
    conn: Connection, inserts: Sequence[tuple[Table, Sequence[dict[str, Any]]]]
) -> str | None:
    """`insert_together`'s one statement on PostgreSQL, or None when they do not fit."""
    if len(inserts) < 2 or sum(len(rows) for _, rows in inserts) * 2 > PARAMETERS_PER_INSERT:
        return None  # (a burst's batch, at a glance: a row has at least two values)
    statements: list[str] = []
    parameters = 0
    for table, rows in inserts:
        plan = _plan(table, conn.dialect, tuple(rows[0]))
        shape = _per_insert(plan.sql, plan.names)
        parameters += len(plan.names) * len(rows)
        if shape is None or parameters > PARAMETERS_PER_INSERT:
            return None
        head, row, _ = shape
        statements.append(head + ", ".join([row] * len(rows)))
    *first, last = statements
    sql = "WITH " + ", ".join(f"i{n} AS ({s})" for n, s in enumerate(first)) + " " + last
    return sql if len(sql) <= CHARACTERS_PER_INSERT else None


def execute_together(
    conn: Connection, runs: Sequence[tuple[UpdateBase, Sequence[dict[str, Any]]]]
) -> None:
    """Run each statement for its rows, as `bulk_execute` does, in the order given, where
    nothing reads how many rows they matched.

    On PostgreSQL, when each runs for one row (a receipts round at a steady load: a
    part's state and its receipt's status), on a table of its own, with parameters of
    names of its own, 50 in all: one statement, every statement but the last a
    data-modifying `WITH` of it, one round trip where there were one per statement. (The
    statements of one `WITH` see the same snapshot and none sees the others' writes:
    hence one table each.)"""
    runs = [(statement, rows) for statement, rows in runs if rows]
    together = _executed_together(conn, runs) if conn.dialect.name == "postgresql" else None
    if together is None:
        for statement, rows in runs:
            bulk_execute(conn, statement, rows)
        return
    drive(conn, *together)


def _executed_together(
    conn: Connection, runs: Sequence[tuple[UpdateBase, Sequence[dict[str, Any]]]]
) -> tuple[str, dict[str, Any]] | None:
    """`execute_together`'s one statement and its parameters, or None when they do not
    make one."""
    if len(runs) < 2 or any(len(rows) != 1 for _, rows in runs):
        return None
    tables = [getattr(statement, "table", None) for statement, _ in runs]
    if None in tables or len(set(tables)) != len(tables):
        return None
    statements: list[str] = []
    parameters: dict[str, Any] = {}
    for statement, rows in runs:
        plan = _statement_plan(statement, conn.dialect, tuple(rows[0]))
        if plan.positional or any(name in parameters for name in plan.names):
            return None
        parameters.update(zip(plan.names, _tuples(plan, plan.fixed, rows)[0], strict=True))
        statements.append(plan.sql)
    *first, last = statements
    sql = "WITH " + ", ".join(f"u{n} AS ({s})" for n, s in enumerate(first)) + " " + last
    if len(parameters) > PARAMETERS_PER_INSERT or len(sql) > CHARACTERS_PER_INSERT:
        return None
    return sql, parameters


def bulk_execute(conn: Connection, statement: UpdateBase, rows: Sequence[dict[str, Any]]) -> int:
    """Run `statement` (an UPDATE, DELETE or INSERT … SELECT built once, without IN lists,
    RETURNING or column defaults to compute) once for each of `rows` (dicts of its
    parameters, with the same keys), in order; returns the rows it matched in all."""
    if not rows:
        return 0
    plan = _statement_plan(statement, conn.dialect, tuple(rows[0]))
    return _run(conn, plan, plan.fixed, rows)


def _run(
    conn: Connection, plan: Plan, fixed: dict[str, Any], rows: Sequence[dict[str, Any]]
) -> int:
    return _drive_rows(conn, plan, _tuples(plan, fixed, rows))


def _tuples(
    plan: Plan, fixed: dict[str, Any], rows: Sequence[dict[str, Any]]
) -> list[tuple[Any, ...]]:
    """Each row's values for the driver, in `plan.names`' order, through the bind
    processors (each distinct value object once; one row, the most common at a steady
    load, without the columns' lists)."""
    if len(rows) == 1:
        row = rows[0]
        values: list[Any] = []
        for name, proc in zip(plan.names, plan.procs, strict=True):
            v = row[name] if name in row else fixed[name]
            values.append(v if proc is None else proc(v))  # as SQLAlchemy: None too
        return [tuple(values)]
    columns: list[list[Any]] = []
    for name, proc in zip(plan.names, plan.procs, strict=True):
        raw = [row[name] for row in rows] if name in rows[0] else [fixed[name]] * len(rows)
        if proc is not None:
            # shared objects (times, policy dicts, None: a JSON column's is "null", as
            # SQLAlchemy stores it) processed once
            memo: dict[int, Any] = {}
            for i, v in enumerate(raw):
                key = id(v)
                if key not in memo:
                    memo[key] = proc(v)
                raw[i] = memo[key]
        columns.append(raw)
    return list(zip(*columns, strict=True))


def _drive_rows(conn: Connection, plan: Plan, tuples: Sequence[tuple[Any, ...]]) -> int:
    """`plan`'s statement once for each of `tuples`, by the driver's executemany (on
    PostgreSQL one or two rows as plain statements: `drive`); the rows it matched."""
    params: Sequence[Any] = (
        tuples if plan.positional else [dict(zip(plan.names, t, strict=True)) for t in tuples]
    )
    count = 0
    for start in range(0, len(params), BATCH):
        count += drive(conn, plan.sql, params[start : start + BATCH], many=True)[1]
    return count
