"""Shared fixtures: databases (SQLite always, PostgreSQL throwaway server), settings with port 0."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop
from sqlalchemy import Engine, create_engine, text

from bridge.db.engine import open_engine, upgrade
from bridge.db.store import Store
from bridge.settings import Settings, load_settings
from tests.peers.postgres import throwaway_postgres

_db_counter = itertools.count()


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async test runs on Python's own event loop; those marked `both_loops` (the SMTP
    listener with STARTTLS, the SMPP layer, the mail client: what meets the network) run on
    uvloop as well (`[server] event_loop = "uvloop"`)."""
    if item.get_closest_marker("both_loops") is None:
        return {"asyncio": asyncio.new_event_loop}
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    with throwaway_postgres() as url:
        yield url


def fresh_postgres(server_url: str) -> str:
    name = f"t{next(_db_counter)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


def shuffle_tables(engine: Engine) -> None:
    """Every table's rows (PostgreSQL) in no order of their times or keys, as in the tables
    of a bridge that has run for months, where autovacuum hands the room updates and purges
    left to whatever row comes next. A plan that reads a range in the table's order,
    expecting to meet its rows early, then reads the history: tests of plans run on this
    layout, not only on the one their writes happen to leave."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        names = conn.exec_driver_sql(
            "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
            " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'"
            " AND a.attname = 'id' AND NOT a.attisdropped"
        ).scalars()
        for name in list(names):
            quoted = conn.dialect.identifier_preparer.quote(name)
            conn.exec_driver_sql(f"CREATE INDEX shuffle ON {quoted} (md5(id::text))")
            conn.exec_driver_sql(f"CLUSTER {quoted} USING shuffle")
            conn.exec_driver_sql("DROP INDEX shuffle")


@pytest.fixture(scope="session")
def durable_postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL with its safe defaults (fsync on), as a whole bridge needs."""
    with throwaway_postgres({}) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def bridge_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for a whole bridge (which migrates it): SQLite in tmp_path, or a new
    database on a durable throwaway PostgreSQL (the bridge refuses one with fsync off)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bridge.db'}"
    return fresh_postgres(request.getfixturevalue("durable_postgres_server"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: SQLite in tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bridge.db'}"
    else:
        url = fresh_postgres(request.getfixturevalue("postgres_server"))
    engine = open_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = open_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    st = Store(open_engine(database_url))
    yield st
    await st.close()


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """The embedded default, but every port 0 and every path inside tmp_path."""
    text_ = f"""
database_url = "sqlite:///{tmp_path / "bridge.db"}"
demo = true
[server]
# no flow control: the tests' clients run in the bridge's process, so their CPU would
# read as the bridge's load (tests/integration/test_intake_pacing.py turns it on)
in_flow_delay = 0
[smtp]
port = 0
[sandbox]
enabled = true
port = 0
receipt_delay = 0.05
inbox = "{tmp_path / "sandbox" / "inbox.jsonl"}"
[mailer]
mode = "maildir"
maildir = "{tmp_path / "maildir"}"
poll_interval = 0.2
[dispatch]
poll_interval = 0.2
retry_min = 1.0
"""
    path = tmp_path / "bridge.toml"
    path.write_text(text_, encoding="utf-8")
    settings = load_settings(path, environ={})
    return settings.model_copy(update=overrides) if overrides else settings
