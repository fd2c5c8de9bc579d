"""The replicated PostgreSQL peer: a standby follows its primary and takes over when promoted.

What a failover test of the bridge rests on: writes on the primary reach the standby;
the standby refuses writes until promoted; with synchronous replication every commit the
primary acknowledged survives a SIGKILL of the primary; the multi-host URLs (libpq's and
SQLAlchemy's) reach whichever server takes writes, and none while no server does.
"""

from __future__ import annotations

from typing import Literal

import psycopg
import pytest
from sqlalchemy import create_engine, text

from tests.peers.postgres import ReplicatedPostgres, replicated_postgres

pytestmark = pytest.mark.postgres

ROWS = 200


def _write(conninfo: str, first: int, last: int) -> None:
    """Rows first..last, each in a commit of its own (each one acknowledged)."""
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        for i in range(first, last + 1):
            conn.execute("INSERT INTO t (id, v) VALUES (%s, %s)", (i, f"row {i}"))


def _ids(pg: ReplicatedPostgres) -> list[int]:
    with psycopg.connect(pg.conninfo(), autocommit=True, connect_timeout=10) as conn:
        return [int(r[0]) for r in conn.execute("SELECT id FROM t ORDER BY id")]


@pytest.mark.parametrize(
    ("loss", "how"), [("kill", "pg_ctl"), ("stop", "sql")], ids=["kill+pg_ctl", "stop+pg_promote"]
)
def test_standby_follows_and_takes_over_through_the_multi_host_url(
    loss: Literal["kill", "stop"], how: Literal["pg_ctl", "sql"]
) -> None:
    with replicated_postgres() as pg:
        assert not pg.primary.in_recovery() and pg.standby.in_recovery()
        with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
            assert conn.info.port == pg.primary.port  # the primary is listed first and writable
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)")
        _write(pg.primary.conninfo(), 1, 10)
        pg.wait_replayed()
        assert pg.standby.query("SELECT count(*) FROM t") == 10
        with (
            psycopg.connect(pg.standby.conninfo(), autocommit=True) as conn,
            pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
        ):
            conn.execute("INSERT INTO t VALUES (99, 'refused')")

        if loss == "kill":
            pg.kill_primary()
        else:
            pg.stop_primary()
        assert not pg.primary.accepting()
        # No server takes writes now: the multi-host URL finds none (a client retries).
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg.conninfo(), connect_timeout=5).close()

        pg.promote(how)
        with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
            assert conn.info.port == pg.standby.port
        _write(pg.conninfo(), 11, 20)
        # The SQLAlchemy spelling of the same list, as the bridge's database_url takes it.
        engine = create_engine(pg.url())
        try:
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (21, 'through sqlalchemy')"))
        finally:
            engine.dispose()
        assert _ids(pg) == list(range(1, 22))


def test_synchronous_commits_survive_sigkill_of_the_primary() -> None:
    with replicated_postgres(synchronous=True) as pg:
        assert pg.primary.query("SHOW synchronous_standby_names") == "standby"
        with psycopg.connect(pg.primary.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)")
        _write(pg.primary.conninfo(), 1, ROWS)
        pg.kill_primary()  # at once: no wait for the standby to catch up
        pg.promote()
        assert _ids(pg) == list(range(1, ROWS + 1))
        # The promoted server is not waiting for a synchronous standby of its own.
        _write(pg.conninfo(), ROWS + 1, ROWS + 1)
        assert len(_ids(pg)) == ROWS + 1
