"""`bridge.db.bulk.bulk_insert` (compiled once, bind processors once per value object, the
rows handed to the driver) stores what SQLAlchemy's own insert stores, row for row and in
the rows' order, for every column type the tables use, with values a driver must quote or
escape and columns that are None in every row. SQLite and a throwaway PostgreSQL (where
several rows go in one statement)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
)
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from bridge.db import bulk
from bridge.db.bulk import bulk_insert

T0 = datetime(2026, 12, 6, 23, 59, 59, 999_999, tzinfo=UTC)

AWKWARD_TEXT = [
    "",
    "NULL",
    "null",
    'a "quoted" word',
    "back\\slash \\\\ two",
    "{braces,commas}",
    "(1,2)",
    " leading and trailing ",
    "Grüße – ÄÖÜ 😀",
    "line\nbreak\ttab\rreturn",
    "'single'",
    "x" * 5000,
]
JSON_VALUES: list[Any] = [
    {"a": [1, 2.5, None], "ü": "€"},
    [1, "two", {"three": None}],
    "a string",
    42,
    True,
    {},
    [],
    {"quote": '"', "brace": "{}", "null": "NULL"},
]


def _table(metadata: MetaData, name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("s", String),
        Column("auto", AutoString),
        Column("t", Text),
        Column("i", Integer),
        Column("big", BigInteger),
        Column("b", Boolean),
        Column("f", Float),
        Column("j", JSON),
        Column("raw", LargeBinary),
        Column("at", UTCDateTime),
    )


def _rows(count: int) -> list[dict[str, Any]]:
    rows = []
    for n in range(count):
        rows.append(
            {
                "s": AWKWARD_TEXT[n % len(AWKWARD_TEXT)],
                "auto": None if n % 3 == 0 else AWKWARD_TEXT[(n + 5) % len(AWKWARD_TEXT)],
                "t": AWKWARD_TEXT[(n + 3) % len(AWKWARD_TEXT)],
                "i": [0, -1, 2**31 - 1, -(2**31), None, 7][n % 6],
                "big": [2**62, -5, None, 0][n % 4],
                "b": [True, False, None][n % 3],
                "f": [1.5, -0.0, 1e300, None, 3.0][n % 5],
                "j": JSON_VALUES[n % len(JSON_VALUES)],
                "raw": [b'\x00\xff{}\\"', b"", None, "ü".encode()][n % 4],
                "at": None if n % 7 == 0 else T0 + timedelta(days=n, microseconds=n),
            }
        )
    return rows


def _stored(engine: Engine, tbl: Table) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(tbl).order_by(tbl.c.id)).all()]


def _raw(engine: Engine, tbl: Table) -> list[tuple[Any, ...]]:
    """The rows as the driver gives them, not read through the column types."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT * FROM {tbl.name} ORDER BY id").all()
        return [tuple(r)[1:] for r in rows]


def test_bulk_insert_stores_what_the_per_row_insert_stores(engine: Engine) -> None:
    metadata = MetaData()
    ours, theirs = _table(metadata, "bulk_ours"), _table(metadata, "bulk_theirs")
    # PostgreSQL's inserts of several rows: the table's ten columns make statements of at
    # most 5 rows (50 parameters); 2 rows take one, 13 and 60 several, the last of 13
    # shorter
    plan = bulk._plan(ours, engine.dialect, tuple(_rows(1)[0]))
    shape = bulk._per_insert(plan.sql, plan.names)
    assert shape is None if engine.dialect.name == "sqlite" else shape is not None
    if shape is not None:
        assert shape[2] == 5
    metadata.create_all(engine)
    try:
        for count in (1, 2, 13, 60):
            rows = _rows(count)
            with engine.begin() as conn:
                bulk_insert(conn, ours, rows)
                conn.execute(insert(theirs), rows)
        for row in _rows(13):  # one row at a time (a path of its own), every type's values
            with engine.begin() as conn:
                bulk_insert(conn, ours, [row])
                conn.execute(insert(theirs), [row])
        # a column whose values are all None, each type (the array has no value to type it)
        nothing = [dict.fromkeys(_rows(1)[0]) for _ in range(3)]
        with engine.begin() as conn:
            bulk_insert(conn, ours, nothing)
            conn.execute(insert(theirs), nothing)
        stored = _stored(engine, ours)
        assert len(stored) == 1 + 2 + 13 + 60 + 13 + 3
        assert stored == _stored(engine, theirs)
        assert _raw(engine, ours) == _raw(engine, theirs)  # the same text of a time on SQLite
        assert [[type(v) for v in r] for r in stored] == [
            [type(v) for v in r] for r in _stored(engine, theirs)
        ]
        assert [r[1] for r in stored[3:16]] == [r["s"] for r in _rows(13)]  # in their order
    finally:
        metadata.drop_all(engine)


def test_inserts_together_store_what_inserts_one_by_one_store(engine: Engine) -> None:
    """`insert_together`: rows for several tables, a child's referring to its parent
    inserted in the same call, stored as SQLAlchemy's inserts store them; on PostgreSQL
    in one statement while they fit in one (50 parameters), else one insert each (as on
    SQLite). A child whose parent is missing is still refused (the foreign key holds to
    the statement's end)."""
    from sqlalchemy import ForeignKey
    from sqlalchemy.exc import IntegrityError

    from tests.integration.test_store_statements import statements

    metadata = MetaData()
    ours, theirs = _table(metadata, "together_ours"), _table(metadata, "together_theirs")
    children = {
        name: Table(
            f"{name}_child",
            metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("parent", Integer, ForeignKey(f"{parent.name}.id"), nullable=False),
            Column("note", String),
        )
        for name, parent in (("ours", ours), ("theirs", theirs))
    }
    postgres = engine.dialect.name == "postgresql"
    metadata.create_all(engine)
    try:
        first = 1
        for parents, per_parent in ((1, 1), (2, 1), (1, 3), (4, 2)):
            rows = [{"id": first + n, **r} for n, r in enumerate(_rows(parents))]
            kids = [
                {"parent": r["id"], "note": AWKWARD_TEXT[(r["id"] + k) % len(AWKWARD_TEXT)]}
                for r in rows
                for k in range(per_parent)
            ]
            first += parents
            with statements(engine) as seen, engine.begin() as conn:
                bulk.insert_together(conn, [(ours, rows), (children["ours"], kids)])
            with engine.begin() as conn:
                conn.execute(insert(theirs), rows)
                conn.execute(insert(children["theirs"]), kids)
            fits = parents * 11 + len(kids) * 2 <= bulk.PARAMETERS_PER_INSERT
            assert len(seen) == (1 if postgres and fits else 2), seen
            assert seen[0].startswith("WITH i0 AS (INSERT INTO together_ours") == (
                postgres and fits
            )
        assert first == 9
        assert _stored(engine, ours) == _stored(engine, theirs)
        assert _raw(engine, ours) == _raw(engine, theirs)
        assert _raw(engine, children["ours"]) == _raw(engine, children["theirs"])
        with pytest.raises(IntegrityError), engine.begin() as conn:
            orphan = [{"parent": 99, "note": "no parent"}]
            bulk.insert_together(
                conn, [(ours, [{"id": 50, **_rows(1)[0]}]), (children["ours"], orphan)]
            )
        assert len(_stored(engine, ours)) == 8  # the failed statement's parent row undone
    finally:
        metadata.drop_all(engine)


def test_updates_together_write_what_updates_one_by_one_write(engine: Engine) -> None:
    """`execute_together`: updates of two tables, each for one row, write what
    `bulk_execute` writes; on PostgreSQL in one statement, and one statement each where
    they do not make one (two rows, one table twice, a parameter name in both), as on
    SQLite."""
    from sqlalchemy import bindparam, update

    from tests.integration.test_store_statements import statements

    metadata = MetaData()
    tables = {
        name: _table(metadata, f"together_{name}")
        for name in ("a_ours", "b_ours", "a_theirs", "b_theirs")
    }
    postgres = engine.dialect.name == "postgresql"

    def set_a(t: Table) -> Any:
        return update(t).where(t.c.id == bindparam("a_id")).values(s=bindparam("a_s"), b=True)

    def set_b(t: Table, name: str = "b_id") -> Any:
        return update(t).where(t.c.id == bindparam(name)).values(at=bindparam("b_at"), j=[1])

    metadata.create_all(engine)
    try:
        with engine.begin() as conn:
            for t in tables.values():
                conn.execute(insert(t), [{"id": n, **r} for n, r in enumerate(_rows(4), 1)])
        when = T0 + timedelta(hours=3)
        cases: list[tuple[list[dict[str, Any]], list[dict[str, Any]], str, bool]] = [
            ([{"a_id": 1, "a_s": "x'y"}], [{"b_id": 2, "b_at": when}], "b_id", True),
            ([{"a_id": 2, "a_s": None}], [{"b_id": 1, "b_at": None}], "b_id", True),
            (
                [{"a_id": 3, "a_s": "z"}, {"a_id": 4, "a_s": "w"}],
                [{"b_id": 3, "b_at": when}],
                "b_id",
                False,
            ),
            ([{"a_id": 4, "a_s": "v"}], [{"a_id": 4, "b_at": when}], "a_id", False),
        ]
        for a_rows, b_rows, b_key, one in cases:
            with statements(engine) as seen, engine.begin() as conn:
                bulk.execute_together(
                    conn,
                    [(set_a(tables["a_ours"]), a_rows), (set_b(tables["b_ours"], b_key), b_rows)],
                )
            with engine.begin() as conn:
                bulk.bulk_execute(conn, set_a(tables["a_theirs"]), a_rows)
                bulk.bulk_execute(conn, set_b(tables["b_theirs"], b_key), b_rows)
            assert len(seen) == (1 if postgres and one else 2), seen  # (an executemany: one)
            assert seen[0].startswith("WITH u0 AS (UPDATE") == (postgres and one)
        with statements(engine) as seen, engine.begin() as conn:  # one table twice
            t = tables["a_ours"]
            bulk.execute_together(
                conn,
                [(set_a(t), [{"a_id": 1, "a_s": "p"}]), (set_b(t), [{"b_id": 2, "b_at": when}])],
            )
        assert len(seen) == 2
        with engine.begin() as conn:
            t = tables["a_theirs"]
            bulk.bulk_execute(conn, set_a(t), [{"a_id": 1, "a_s": "p"}])
            bulk.bulk_execute(conn, set_b(t), [{"b_id": 2, "b_at": when}])
        for name in ("a", "b"):
            assert _raw(engine, tables[f"{name}_ours"]) == _raw(engine, tables[f"{name}_theirs"])
        assert _stored(engine, tables["a_ours"])[0][1] == "p"
    finally:
        metadata.drop_all(engine)
