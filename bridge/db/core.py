"""Typed access to a table class's Core table, for statements built once in SQLAlchemy Core.

Domains declare their tables as SQLModel classes and write their hot statements in
Core (`executemany`, statements compiled once): `table(Order).c.status` is typed, where
`Order.__table__` is not declared by SQLModel and needs a `type: ignore` at every use.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import Column, Connection, Table, delete, func, inspect, select
from sqlmodel import SQLModel

# One past the largest id a BIGINT column (and SQLite's INTEGER) holds: a number from a
# request at or above it names no row, and binding it would fail (SQLite: OverflowError,
# PostgreSQL: out of range), so it is refused before it reaches a query.
MAX_ROW_ID: Final = 2**63


def table(model: type[SQLModel]) -> Table:
    """The Core `Table` of a SQLModel table class."""
    found = inspect(model).local_table
    if not isinstance(found, Table):  # a SQLModel table class always maps one Table
        raise TypeError(f"{model.__name__} is not a table class")
    return found


def delete_before(
    conn: Connection, tbl: Table, column: Column[Any], cut: datetime, *where: Any, dry_run: bool
) -> int:
    """Delete the rows of `tbl` whose `column` is before `cut` and that match `where` (with
    `dry_run`: count them); how many. The one form of every retention rule."""
    old = (column < cut, *where)
    if dry_run:
        return count_rows(conn, tbl, *old)
    return int(conn.execute(delete(tbl).where(*old)).rowcount or 0)


def count_rows(conn: Connection, tbl: Table, *where: Any) -> int:
    """How many rows of `tbl` match `where` (what a retention rule's dry run reports)."""
    return int(conn.execute(select(func.count()).select_from(tbl).where(*where)).scalar() or 0)
