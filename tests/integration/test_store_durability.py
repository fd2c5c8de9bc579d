"""The bridge refuses a PostgreSQL server that could lose acknowledged mail in a crash."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, create_engine, text

from bridge.db.engine import check_durability, open_engine
from bridge.errors import ConfigError
from tests.helpers import wait_for
from tests.peers.postgres import throwaway_postgres

pytestmark = pytest.mark.postgres


def _show(engine: Engine, name: str) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text(f"SHOW {name}")).scalar())


def test_fsync_off_is_refused(postgres_server: str) -> None:
    engine = open_engine(postgres_server)  # the shared test server runs with fsync=off
    try:
        assert _show(engine, "fsync") == "off"
        with pytest.raises(ConfigError, match="fsync=off"):
            check_durability(engine)
    finally:
        engine.dispose()


def _alter(admin: Engine, *statements: str) -> None:
    with admin.connect() as conn:
        for statement in statements:
            conn.execute(text(statement))


async def test_full_page_writes_and_synchronous_commit_off_are_refused() -> None:
    with throwaway_postgres({}) as url:  # PostgreSQL's own (safe) defaults
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        engine = open_engine(url)
        try:
            assert check_durability(engine) == (
                "postgresql synchronous_commit=on fsync=on full_page_writes=on"
            )
            _alter(admin, "ALTER SYSTEM SET full_page_writes = off", "SELECT pg_reload_conf()")
            await wait_for(lambda: _show(engine, "full_page_writes") == "off", within=10)
            with pytest.raises(ConfigError, match="full_page_writes=off"):
                check_durability(engine)
            _alter(
                admin,
                "ALTER SYSTEM RESET full_page_writes",
                "SELECT pg_reload_conf()",
                "ALTER DATABASE mailsms SET synchronous_commit = off",
            )
            await wait_for(lambda: _show(engine, "full_page_writes") == "on", within=10)
            engine.dispose()  # new connections see the database's setting
            with pytest.raises(ConfigError, match="found synchronous_commit=off;"):
                check_durability(engine)
        finally:
            engine.dispose()
            admin.dispose()
