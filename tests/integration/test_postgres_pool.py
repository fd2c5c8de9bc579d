"""PostgreSQL's pooled connections: pinged when they have lain idle, not at every checkout;
kept by each database thread of the store between its transactions and reads.

A ping (`SELECT 1`) at every checkout cost a round trip per transaction, ~14 % of the
database side of an SMS (four transactions each). A connection idle in the pool for
over `PING_IDLE` seconds is what a failover, a restarted server or a proxy's idle
timeout leaves dead, and it is still pinged (and replaced); one returned a moment ago
goes out as it is. If it died meanwhile, its transaction fails as a storage fault (the
caller's 4xx) and every older pooled connection is dropped with it, so one transaction
fails, not one per pooled connection; on the hot statements' own path
(`bridge.db.prepared.drive`) as on SQLAlchemy's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, event, func, select, text

from bridge.db import engine as engine_module
from bridge.db.engine import open_engine
from bridge.db.prepared import fetch
from bridge.db.store import Store
from bridge.errors import StorageUnreachable
from tests.conftest import fresh_postgres

pytestmark = pytest.mark.postgres

_PID = select(func.pg_backend_pid().label("pid"))


def _pid_by_sqlalchemy(conn: Connection) -> int:
    return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _pid_by_plan(conn: Connection) -> int:
    return int(fetch(conn, _PID, {})[0].pid)


def _kill(server_url: str, pids: set[int]) -> None:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for pid in pids:
                assert conn.execute(text(f"SELECT pg_terminate_backend({pid})")).scalar_one()
    finally:
        admin.dispose()


async def _pooled_pids(store: Store, read: Callable[[Connection], int], n: int) -> set[int]:
    """`n` connections in the pool (taken at once, so each a connection of its own)."""

    def held(conn: Connection) -> int:
        pid = read(conn)
        time.sleep(0.2)  # the others are taken meanwhile
        return pid

    pids = set(await asyncio.gather(*(store.call(held) for _ in range(n))))
    assert len(pids) == n
    return pids


@pytest.mark.parametrize("read", [_pid_by_sqlalchemy, _pid_by_plan], ids=["sqlalchemy", "plan"])
async def test_a_connection_idle_past_the_mark_is_pinged_and_a_dead_one_replaced(
    durable_postgres_server: str,
    monkeypatch: pytest.MonkeyPatch,
    read: Callable[[Connection], int],
) -> None:
    monkeypatch.setattr(engine_module, "PING_IDLE", 0.05)
    store = Store(open_engine(fresh_postgres(durable_postgres_server)), threads=3)
    try:
        pids = await _pooled_pids(store, read, 3)
        _kill(durable_postgres_server, pids)
        await asyncio.sleep(0.1)  # idle past the mark
        for _ in range(4):  # every call finds a live connection
            assert await store.call(read) not in pids
    finally:
        await store.close()


@pytest.mark.parametrize("read", [_pid_by_sqlalchemy, _pid_by_plan], ids=["sqlalchemy", "plan"])
async def test_a_connection_back_a_moment_ago_is_not_pinged_and_a_dead_pool_fails_one_call(
    durable_postgres_server: str,
    monkeypatch: pytest.MonkeyPatch,
    read: Callable[[Connection], int],
) -> None:
    monkeypatch.setattr(engine_module, "PING_IDLE", 60.0)
    store = Store(open_engine(fresh_postgres(durable_postgres_server)), threads=3)
    try:
        pids = await _pooled_pids(store, read, 3)
        _kill(durable_postgres_server, pids)
        # Not pinged: the dead connection is used, and its transaction fails retryably.
        with pytest.raises(StorageUnreachable):
            await store.call(read)
        # The disconnect dropped the other two dead connections as well.
        for _ in range(4):
            assert await store.call(read) not in pids
    finally:
        await store.close()


# A new connection's session setup (commands and start-up: idle in a transaction 60 s at most).
SESSION = "SET lock_timeout = 5000; SET idle_in_transaction_session_timeout = 60000"


def test_a_ping_only_for_a_connection_idle_past_the_mark(
    durable_postgres_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connected or returned a moment ago: handed out as it is; idle longer: pinged."""
    sent: list[str] = []
    real = engine_module._outside_transactions

    def counted(dbapi_connection: Any, sql: str) -> None:
        sent.append(sql)
        real(dbapi_connection, sql)

    monkeypatch.setattr(engine_module, "_outside_transactions", counted)
    monkeypatch.setattr(engine_module, "PING_IDLE", 60.0)  # however slow the machine
    engine = open_engine(fresh_postgres(durable_postgres_server))
    try:
        with engine.connect() as conn:  # a new connection: its session set up, no ping
            first = _pid_by_sqlalchemy(conn)
        assert sent == [SESSION]
        for _ in range(3):  # back a moment ago
            with engine.connect() as conn:
                assert _pid_by_sqlalchemy(conn) == first
        assert sent == [SESSION]
        monkeypatch.setattr(engine_module, "PING_IDLE", 0.0)  # now every wait is past it
        with engine.connect() as conn:
            assert _pid_by_sqlalchemy(conn) == first  # alive: kept
        assert sent == [SESSION, "SELECT 1"]
    finally:
        engine.dispose()


async def test_each_database_thread_keeps_its_connection_between_transactions_and_reads(
    durable_postgres_server: str,
) -> None:
    """No pool checkout (and return, with its reset) per transaction or read: a thread's
    transactions and reads run on the connection it took first."""
    engine = open_engine(fresh_postgres(durable_postgres_server))
    checkouts: list[int] = []
    event.listen(engine, "checkout", lambda *_: checkouts.append(1))
    store = Store(engine, threads=1)
    try:
        pids = {await store.call(_pid_by_plan) for _ in range(5)}
        pids |= {await store.read(_pid_by_sqlalchemy) for _ in range(5)}
        pids |= {await store.call(_pid_by_sqlalchemy) for _ in range(5)}
        assert len(pids) == 1
        assert len(checkouts) == 1
    finally:
        await store.close()


async def test_a_read_runs_each_statement_on_its_own_and_leaves_transactions_whole(
    durable_postgres_server: str,
) -> None:
    """A read on the kept connection is in autocommit (each statement its own snapshot,
    no BEGIN or COMMIT), and the transactions after it are transactions again: a failed
    one leaves nothing behind."""
    store = Store(open_engine(fresh_postgres(durable_postgres_server)), threads=1)

    def two_statements(conn: Connection) -> tuple[Any, Any]:
        first = conn.execute(text("SELECT now()")).scalar_one()
        time.sleep(0.01)
        return first, conn.execute(text("SELECT now()")).scalar_one()

    def create(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE kept (n int)"))

    def write_then_fail(conn: Connection) -> None:
        conn.execute(text("INSERT INTO kept VALUES (1)"))
        raise RuntimeError("a bug after the write")

    def count(conn: Connection) -> int:
        return int(conn.execute(text("SELECT count(*) FROM kept")).scalar_one())

    try:
        first, second = await store.read(two_statements)
        assert first < second  # now() is the transaction's start: two transactions
        first, second = await store.call(two_statements)
        assert first == second  # one transaction
        await store.call(create)
        await store.read(count)
        with pytest.raises(RuntimeError):
            await store.call(write_then_fail)
        assert await store.read(count) == 0
        assert await store.call(count) == 0
    finally:
        await store.close()


async def test_a_kept_connection_cut_off_in_a_read_fails_that_read_only(
    durable_postgres_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads and transactions share the kept connection: killed, it fails one read
    retryably, and the next transaction runs on a new one."""
    monkeypatch.setattr(engine_module, "PING_IDLE", 60.0)  # no ping: the dead one is used
    store = Store(open_engine(fresh_postgres(durable_postgres_server)), threads=1)
    try:
        pid = await store.call(_pid_by_plan)
        _kill(durable_postgres_server, {pid})
        with pytest.raises(StorageUnreachable):
            await store.read(_pid_by_plan)
        assert await store.call(_pid_by_plan) != pid
        assert await store.read(_pid_by_sqlalchemy) != pid
    finally:
        await store.close()
