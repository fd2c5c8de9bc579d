"""Hot statements run on the driver: compiled once per dialect, run with the driver's own
parameters, their rows typed as `conn.execute` types them.

`conn.execute` prepares every execution again: it looks the statement up in the compiled
cache (generating its cache key walks the whole statement), builds an execution context,
constructs the parameters, renders an `IN` list for its length, and wraps every row of
the result. For a statement that runs for every mail, that costs several times what the
database takes to answer it. A statement built once in a domain's module is compiled here
once per dialect and set of parameter names (`plan`); a run processes its parameters
with the column types' bind processors, hands the SQL and the parameters to the driver's
cursor in the connection's transaction and processes the rows with the types' result
processors: the same SQL, the same stored values and the same values read as through
`conn.execute`.

An `IN` list given at each run (`column.in_(bindparam("ids", expanding=True))`) does not
make a statement of its own for each length: on PostgreSQL it is one parameter,
`= ANY(%(ids)s)` with the list as an array; on SQLite it is written for a few fixed sizes
(1, 2, 4, 8 …, padded with the list's last value, which matches nothing more), so that
SQLite plans it as the list it is — a list from `json_each(?)` is a table of unknown
size, for which SQLite may scan a whole index instead of looking each id up. A list
fixed when the statement was built (`column.in_([...])`) is written out once, one
parameter per value.

On PostgreSQL the values fixed when the statement was built (a status it looks for, the
final states, a `LIMIT 1`) are written into its SQL as literals, not sent as parameters:
psycopg prepares a statement at its fifth run, and the server may then plan it once for
any parameters, a plan that cannot use a partial index whose condition names those
values, nor estimate how few rows they select (tests/integration/test_history_scaling.py
runs every per-mail step under such plans).

Where a statement runs through SQLAlchemy's execution after all (a connection with
cursor events, e.g. a test counting statements, or one with no transaction begun), it
goes through `exec_driver_sql` with the same SQL and parameters. Database errors are
SQLAlchemy's (`DBAPIError`), as from `conn.execute`, and a lost connection is invalidated, with
every pooled connection older than it (as `conn.execute` does).
"""

from __future__ import annotations

import functools
import re
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Dialect, Executable
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeEngine
from sqlmodel.sql.sqltypes import UTCDateTime

Proc = Callable[[Any], Any] | None

_EXPANDING = "__[POSTCOMPILE_{}]"


class Plan(NamedTuple):
    """A statement compiled for one dialect and one set of parameter names."""

    sql: str
    positional: bool  # the driver takes a tuple (SQLite's "?"), else a dict by name
    names: tuple[str, ...]  # the driver's parameters, in order
    procs: tuple[Proc, ...]  # each parameter's bind processor
    fixed: dict[str, Any]  # values for the names the caller does not give
    columns: tuple[str, ...]  # the names of the result's columns
    results: tuple[Proc, ...]  # each result column's result processor
    row: type[tuple[Any, ...]] | None  # a result row: a tuple with named fields
    lists: frozenset[str]  # IN lists written for their size at each run
    sized: dict[tuple[int, ...], str]  # the SQL by list sizes, filled as they are met


def compile_plan(
    statement: Executable, dialect: Dialect, keys: tuple[str, ...], *, defaults: bool = False
) -> Plan:
    """`statement` compiled for `dialect`, given the parameters `keys`. `defaults`: an
    INSERT whose column defaults the caller computes (bulk inserts), else refused."""
    if dialect.paramstyle not in ("qmark", "pyformat") or dialect.name not in (
        "sqlite",
        "postgresql",
    ):
        raise ValueError(f"no plan for {dialect.name} ({dialect.paramstyle})")
    if not isinstance(statement, ClauseElement):
        raise TypeError(f"not a statement: {statement!r}")
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    assert isinstance(compiled, SQLCompiler)
    binds = {name: bind for bind, name in compiled.bind_names.items()}
    if (
        (not defaults and (compiled.insert_prefetch or compiled.update_prefetch))
        or compiled.escaped_bind_names
        or any(b.literal_execute or b.callable for b in binds.values())
    ):
        raise ValueError(f"not for a plan (column defaults or late-rendered values): {statement}")
    positional = bool(compiled.positional)
    # PostgreSQL: the values the statement was built with go into its SQL as literals,
    # so that a plan made for any parameters knows them (the module's docstring)
    written_out = dialect.name == "postgresql" and not positional
    order = list(compiled.positiontup or ()) if positional else list(compiled.params)
    sql = compiled.string
    names: list[str] = []
    procs: list[Proc] = []
    fixed: dict[str, Any] = {}
    lists: set[str] = set()
    for name in order:
        bind = binds[name]
        proc = bind_processor(bind.type, dialect)
        literal = not defaults and name not in keys and not bind.required and written_out
        if not bind.expanding:
            if literal and (text := _literal(proc, compiled.params[name])) is not None:
                sql = sql.replace(f"%({name})s", text)
                continue
            names.append(name)
            procs.append(proc)
            if name not in keys and not bind.required:
                fixed[name] = compiled.params[name]
            continue
        token = _EXPANDING.format(name)
        # a list fixed when the statement was built is written out wherever it appears
        # (by name on PostgreSQL); a list given at each run, or "?" marks, only once
        if sql.count(token) != 1 and (name in keys or positional):
            raise ValueError(f"the list {name!r} appears more than once: {statement}")
        if name in keys:  # a list given at each run
            names.append(name)
            if dialect.name == "sqlite":  # written for its size at each run
                if f"NOT IN ({token})" in sql or f"IN ({token})" not in sql:
                    raise ValueError(f"the list {name!r} is not an IN list: {statement}")
                lists.add(name)
                procs.append(proc)
            else:  # one parameter: an array
                sql = _any(sql, token, name)
                procs.append(_array_proc(proc))
            continue
        values = list(compiled.params[name] or ())
        if not values:
            raise ValueError(f"an empty fixed list {name!r}: {statement}")
        texts = [_literal(proc, v) for v in values] if literal else [None]
        if all(t is not None for t in texts):
            sql = sql.replace(token, ", ".join(t for t in texts if t is not None))
            continue
        each = [f"{name}__{i}" for i in range(len(values))]
        marks = ["?" if positional else f"%({n})s" for n in each]
        sql = sql.replace(token, ", ".join(marks))
        names += each
        procs += [proc] * len(each)
        fixed.update(zip(each, values, strict=True))
    result_columns = compiled._result_columns or []
    columns = tuple(c[0] for c in result_columns)
    results = tuple(result_processor(c[3], dialect) for c in result_columns)
    row = namedtuple("Row", columns) if columns else None
    if lists and not positional:
        raise ValueError(f"IN lists by size need positional parameters: {statement}")
    return Plan(
        sql,
        positional,
        tuple(names),
        tuple(procs),
        fixed,
        columns,
        results,
        row,
        frozenset(lists),
        {},
    )


def bind_processor(type_: TypeEngine[Any], dialect: Dialect) -> Proc:
    """The bind processor of `type_` on `dialect`: SQLAlchemy's, but for the times of the
    tables (`UTCDateTime`), whose processor is two layers of Python calls for every
    value (check the zone, convert to UTC, then on SQLite format the fields with `%`):
    a time already in UTC (`datetime.now(UTC)`, as the bridge makes them, and as it reads
    them) is written straight, the same text on SQLite and the same object on
    PostgreSQL; any other value goes through SQLAlchemy's, and fails as there
    (tests/unit/test_prepared_times.py checks the two give the same)."""
    proc = type_._cached_bind_processor(dialect)
    if proc is None or not isinstance(type_, UTCDateTime):
        return proc
    return _sqlite_time(proc) if dialect.name == "sqlite" else _utc_time(proc)


def result_processor(type_: TypeEngine[Any], dialect: Dialect) -> Proc:
    """The result processor of `type_` on `dialect`: SQLAlchemy's, but for `UTCDateTime`
    on SQLite, where a stored time (text without a zone) is read in one call instead of
    three (`bind_processor`)."""
    proc = type_._cached_result_processor(dialect, None)
    if proc is None or not isinstance(type_, UTCDateTime) or dialect.name != "sqlite":
        return proc
    return _sqlite_read_time(proc)


def _sqlite_time(fallback: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def process(value: Any) -> Any:
        if value is None:
            return None
        if value.__class__ is datetime and value.tzinfo is UTC:
            # SQLAlchemy's SQLite text, "%04d-%02d-%02d %02d:%02d:%02d.%06d", less "+00:00"
            return value.isoformat(" ", "microseconds")[:-6]
        return fallback(value)

    return process


def _utc_time(fallback: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def process(value: Any) -> Any:
        if value.__class__ is datetime and value.tzinfo is UTC:
            return value  # what `astimezone(UTC)` gives for it: itself
        return fallback(value)

    return process


def _sqlite_read_time(fallback: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def process(value: Any) -> Any:
        if value.__class__ is str:
            read = datetime.fromisoformat(value)
            if read.tzinfo is None:
                return read.replace(tzinfo=UTC)
        return fallback(value)

    return process


def _literal(proc: Proc, value: Any) -> str | None:
    """`value` (a text, a whole number or a truth value, as its bind processor makes it) as
    PostgreSQL literal SQL with psycopg's `%` doubled; None for any other value."""
    if proc is not None:
        value = proc(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    # a text with a backslash stays a parameter (what it means in a literal depends on
    # the server's standard_conforming_strings)
    if isinstance(value, str) and "\\" not in value:
        return "'" + str(value).replace("'", "''").replace("%", "%%") + "'"
    return None


def _any(sql: str, token: str, name: str) -> str:
    """`x IN (<token>)` as `x = ANY(%(name)s)` (`NOT IN`: `!= ALL`): one array parameter."""
    found = re.search(rf" (NOT )?IN \({re.escape(token)}\)", sql)
    if found is None:
        raise ValueError(f"the list {name!r} is not an IN list")
    form = f" != ALL(%({name})s)" if found.group(1) else f" = ANY(%({name})s)"
    return sql[: found.start()] + form + sql[found.end() :]


def _array_proc(proc: Proc) -> Callable[[Any], Any]:
    def process(values: Any) -> Any:
        return [v if proc is None else proc(v) for v in values]

    return process


def _size(length: int) -> int:
    """The number of places an IN list of `length` values is written with (1, 2, 4, 8 …)."""
    return 1 if length <= 1 else 1 << (length - 1).bit_length()


@functools.lru_cache(maxsize=128)  # the statements built once in the domains' modules
def plan(statement: Executable, dialect: Dialect, keys: tuple[str, ...]) -> Plan:
    """`compile_plan`, once per statement (built once), dialect and parameter names."""
    return compile_plan(statement, dialect, keys)


def parameters(plan: Plan, values: Mapping[str, Any]) -> tuple[str, Any]:
    """The SQL and the driver's parameters for one run: a tuple, or a dict for a driver
    that names them."""
    out: list[Any] = []
    if not plan.lists:
        for name, proc in zip(plan.names, plan.procs, strict=True):
            v = values[name] if name in values else plan.fixed[name]
            out.append(v if proc is None else proc(v))  # as SQLAlchemy: None too
        return plan.sql, tuple(out) if plan.positional else dict(zip(plan.names, out, strict=True))
    sizes: list[int] = []
    for name, proc in zip(plan.names, plan.procs, strict=True):
        v = values[name] if name in values else plan.fixed[name]
        if name not in plan.lists:
            out.append(v if proc is None else proc(v))
            continue
        items = [x if proc is None else proc(x) for x in v]
        size = _size(len(items))
        out += items + [items[-1] if items else None] * (size - len(items))  # NULL: no match
        sizes.append(size)
    key = tuple(sizes)
    sql = plan.sized.get(key)
    if sql is None:
        sql = plan.sql
        for name, size in zip((n for n in plan.names if n in plan.lists), sizes, strict=True):
            sql = sql.replace(_EXPANDING.format(name), ", ".join("?" * size))
        plan.sized[key] = sql
    return sql, tuple(out)


# The key of a connection's kept cursor in its pool entry's `info` (which SQLAlchemy
# clears when it replaces the driver's connection).
_CURSOR = "mailsms.cursor"
# A cursor that read more rows is closed after the read, not kept: psycopg's cursor holds
# its last result (the server's rows as received) until it runs the next statement.
_KEEP_AFTER_ROWS = 500


def drive(
    conn: Connection, sql: str, params: Any, *, many: bool = False, rows: bool = False
) -> tuple[list[Any], int]:
    """Run `sql` with the driver's `params` (a list of them: `many`) in `conn`'s
    transaction; returns the raw rows (`rows`: the statement returns some, read them) and
    the row count. (The cursor's description is not asked for: psycopg builds it anew,
    column by column, at each ask, and for a wide row that costs more than the rest.)

    On PostgreSQL one cursor per driver connection runs every statement here: a new
    psycopg cursor finds the adapters for its parameters' types again, ~16 µs more per
    statement than a kept one (bench/README.md, 2026-12-08). A statement that fails, or
    reads more than `_KEEP_AFTER_ROWS` rows, closes it; the next one takes a new one. On
    SQLite a cursor is new for each statement and closed after it, which also ends
    (resets) its statement there: ~0.5 µs, not worth a statement left open.
    """
    if not conn.in_transaction() or conn._has_events or conn.engine._has_events:
        result = conn.exec_driver_sql(sql, params)
        found: list[Any] = list(result.fetchall()) if rows else []
        return found, result.rowcount
    pooled = conn.connection
    dbapi = pooled.dbapi_connection
    assert dbapi is not None
    keep = conn.dialect.name == "postgresql"
    cursor = pooled.info.get(_CURSOR) if keep else None
    if cursor is None or cursor.connection is not dbapi:
        cursor = dbapi.cursor()
        if keep:
            pooled.info[_CURSOR] = cursor
    try:
        if not many:
            cursor.execute(sql, params)
        elif len(params) == 1:  # one row: psycopg's executemany would set up a pipeline for it
            cursor.execute(sql, params[0])
        elif len(params) == 2 and not rows and conn.dialect.name == "postgresql":
            # and for two rows the pipeline costs psycopg more than two statements, with the
            # same work for the server (bench/README.md, 2026-12-06)
            cursor.execute(sql, params[0])
            first = cursor.rowcount
            cursor.execute(sql, params[1])
            return [], first + cursor.rowcount  # (PostgreSQL: the kept cursor, left open)
        else:
            cursor.executemany(sql, params)
        found = cast("list[Any]", cursor.fetchall()) if rows else []
        count: int = cursor.rowcount
    except conn.dialect.loaded_dbapi.Error as exc:
        pooled.info.pop(_CURSOR, None)
        error = driver_error(conn, exc, cursor, sql, params, many=many)
        with suppress(conn.dialect.loaded_dbapi.Error):
            cursor.close()
        raise error from exc
    if not keep:
        cursor.close()
    elif len(found) > _KEEP_AFTER_ROWS:
        pooled.info.pop(_CURSOR, None)
        cursor.close()
    return found, count


def driver_error(
    conn: Connection, exc: Any, cursor: Any, sql: str, params: Any, *, many: bool = False
) -> StatementError:
    """The driver's error `exc` (raised by `cursor` of `conn`'s connection, running
    `sql`) as SQLAlchemy's execution raises it; a lost connection is invalidated first,
    as SQLAlchemy does, and every older pooled connection with it."""
    lost = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor)
    if lost:
        conn.engine.pool._invalidate(conn.connection, exc)
        conn.invalidate(exc)
    error: StatementError = DBAPIError.instance(
        sql,
        params,
        exc,
        conn.dialect.loaded_dbapi.Error,
        connection_invalidated=lost,
        dialect=conn.dialect,
        ismulti=many,
    )
    return error


@contextmanager
def savepoint(conn: Connection, name: str = "step") -> Iterator[None]:
    """A savepoint in `conn`'s transaction around the block, set, released and rolled back
    to by plain SQL on the driver (`conn.begin_nested()` builds and compiles a statement
    for each, several times what the database takes). An exception in the block undoes
    the block's writes and goes on; the transaction stays usable."""
    drive(conn, f"SAVEPOINT {name}", _NO_PARAMETERS[conn.dialect.name])
    try:
        yield
    except BaseException:
        with suppress(DBAPIError):  # the connection itself failed: the block's error says more
            drive(conn, f"ROLLBACK TO SAVEPOINT {name}", _NO_PARAMETERS[conn.dialect.name])
            drive(conn, f"RELEASE SAVEPOINT {name}", _NO_PARAMETERS[conn.dialect.name])
        raise
    drive(conn, f"RELEASE SAVEPOINT {name}", _NO_PARAMETERS[conn.dialect.name])


_NO_PARAMETERS: dict[str, Any] = {"sqlite": (), "postgresql": None}


def fetch(conn: Connection, statement: Executable, values: Mapping[str, Any]) -> list[Any]:
    """The rows of `statement` (a SELECT, or a write with RETURNING) with `values`, as
    `conn.execute(statement, values).all()` gives them: tuples whose fields are named
    after the columns, read through the columns' types."""
    p = plan(statement, conn.dialect, tuple(values))
    if p.row is None:
        raise ValueError(f"returns no rows: {statement}")
    raw, _ = drive(conn, *parameters(p, values), rows=True)
    make = p.row._make  # type: ignore[attr-defined]
    if not any(p.results):
        return [make(r) for r in raw]
    results = p.results
    return [make([v if f is None else f(v) for f, v in zip(results, r, strict=True)]) for r in raw]


def execute(conn: Connection, statement: Executable, values: Mapping[str, Any]) -> int:
    """Run `statement` (an UPDATE, DELETE or INSERT) with `values`; the rows it matched."""
    p = plan(statement, conn.dialect, tuple(values))
    return drive(conn, *parameters(p, values))[1]
