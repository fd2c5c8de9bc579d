"""Typed access to a table class's Core table, for statements built once in SQLAlchemy Core.

Domains declare their tables as SQLModel classes and write their hot statements in
Core (`executemany`, statements compiled once): `table(Order).c.status` is typed, where
`Order.__table__` is not declared by SQLModel and needs a `type: ignore` at every use.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import Table, inspect
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
