"""Sessions of the bridge's role stalled with no server timer running are ended after
`database_timeout` by another instance (`bridge/db/stalled.py`), on a real PostgreSQL.

The stalled client is a psycopg connection inside a transaction holding a lock that
stops (its thread waits, as a frozen instance's would) where the server's own
`idle_in_transaction_session_timeout` does not run: in the middle of a pipeline (the
server `active`, waiting for the rest of the batch), or after a flush request that
followed the end of a batch (`idle in transaction`, the timer stopped by the flush). The
tests show that the server leaves it there, then that the instance's step ends it and
the lock goes with it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy import create_engine, text

from bridge.db.engine import open_engine
from bridge.db.stalled import IDLE_GRACE, StalledSessions, Waiting
from bridge.db.store import Store
from tests.conftest import fresh_postgres

pytestmark = pytest.mark.postgres

AFTER = 3.0  # database_timeout here
LOCK = 4242  # the advisory lock the stalled transaction holds


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def _stalled(url: str, application: str, where: str = "pipeline") -> Iterator[int]:
    """A connection inside a transaction holding advisory lock LOCK, stopped where the
    server runs no idle timer (its timer 1 s): in the middle of a pipeline, or
    (`where="flushed"`) after a flush request; yields its server pid. Let go at the end."""
    go = threading.Event()
    started: list[int] = []
    ready = threading.Event()

    def client() -> None:
        try:
            with psycopg.connect(_conninfo(url), application_name=application) as conn:
                conn.execute("SET idle_in_transaction_session_timeout = 1000")
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
                started.append(conn.info.backend_pid)
                if where == "pipeline":
                    with conn.pipeline():
                        conn.execute("SELECT 1")
                        conn.pgconn.flush()  # the first of the batch reaches the server
                        ready.set()
                        go.wait(30)
                else:  # the batch ended (its sync answered), then a flush request
                    conn.pgconn.send_flush_request()
                    conn.pgconn.flush()
                    ready.set()
                    go.wait(30)
        except psycopg.OperationalError:
            pass  # ended under it: what the first tests want
        finally:
            ready.set()

    thread = threading.Thread(target=client, name="stalled-client")
    thread.start()
    try:
        assert ready.wait(10) and started, "the stalled client did not start"
        yield started[0]
    finally:
        go.set()
        thread.join(30)


def _alive(url: str, pid: int) -> str | None:
    """The session's state and wait, if it is there."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            sql = "SELECT state || '/' || coalesce(wait_event, '') FROM pg_stat_activity"
            row = conn.execute(text(sql + " WHERE pid = :p"), {"p": pid}).first()
            return None if row is None else str(row[0])
    finally:
        engine.dispose()


def _settled(url: str, pid: int, wanted: str) -> None:
    """Wait until the server has read the stalled client's last message (on a busy
    machine it may take a moment): the session shows `wanted`."""
    deadline = time.monotonic() + 10
    while (now := _alive(url, pid)) != wanted:
        assert time.monotonic() < deadline, (now, wanted)
        time.sleep(0.05)


def _lock_free(url: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            taken = conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK})
            return bool(taken.scalar())
    finally:
        engine.dispose()


@pytest.fixture
def url(postgres_server: str) -> str:
    return fresh_postgres(postgres_server)


@pytest.mark.parametrize(
    ("where", "state"), [("pipeline", "active"), ("flushed", "idle in transaction")]
)
async def test_a_stalled_session_is_ended_after_database_timeout(
    url: str, where: str, state: str
) -> None:
    store = Store(open_engine(url, timeout=AFTER), timeout=AFTER)
    stalled = StalledSessions(store, AFTER)
    try:
        with _stalled(url, "frozen-instance", where) as pid:
            _settled(url, pid, f"{state}/ClientRead")
            began = time.monotonic()
            assert not _lock_free(url)
            # the server's own idle timer (1 s) does not end it; nor the step before AFTER
            while time.monotonic() - began < AFTER - 0.5:
                await stalled.step()
                await asyncio.sleep(stalled.step_every)
            assert _alive(url, pid) == f"{state}/ClientRead"
            assert stalled.ended == 0
            while _alive(url, pid) is not None:
                assert time.monotonic() - began < AFTER + IDLE_GRACE + 3 * stalled.step_every + 2
                await stalled.step()
                await asyncio.sleep(stalled.step_every)
            assert stalled.ended == 1
            assert _lock_free(url), "the stalled transaction's lock is still held"
    finally:
        await store.close()


async def test_sessions_not_stalled_or_not_ours_are_left_alone(url: str) -> None:
    """A session of ours idle outside a transaction (it holds nothing) and another role's
    session stalled in a pipeline: neither is ended. (One of ours idle inside a
    transaction is ended after `database_timeout` and `IDLE_GRACE`, by the server when
    its timer runs, else by the step: `test_due_needs_the_servers_time_and_ours`.)"""
    database = url.rsplit("/", 1)[1]
    stranger = f"stranger_{database}"  # roles are the server's: one per database here
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {stranger} LOGIN"))
        conn.execute(text(f"GRANT CONNECT ON DATABASE {database} TO {stranger}"))
    admin.dispose()
    store = Store(open_engine(url, timeout=1.0), timeout=1.0)
    stalled = StalledSessions(store, 1.0)
    other = url.replace("://mailsms@", f"://{stranger}@", 1)
    assert other != url
    try:
        with (
            psycopg.connect(_conninfo(url)) as idle,
            _stalled(other, "someone-else") as pid,
        ):
            idle.execute("SELECT 1")
            idle.commit()
            _settled(url, pid, "active/ClientRead")
            began = time.monotonic()
            while time.monotonic() - began < 3.0:
                await stalled.step()
                await asyncio.sleep(stalled.step_every)
            assert stalled.ended == 0
            assert _alive(url, pid) == "active/ClientRead"
            assert idle.execute("SELECT 1").fetchone() == (1,)
    finally:
        await store.close()


def _waiting(pid: int, state: str, waited: float) -> Waiting:
    return Waiting((pid, state), pid, state, "ClientRead", "bridge-1", "local", "", waited)


def test_due_needs_the_servers_time_and_ours() -> None:
    """A long statement followed by a moment's wait is not due: the server's time since
    the statement began is over `after`, ours since it was first seen waiting is not. An
    idle session gets the server's own timer's turn first."""
    stalled = StalledSessions(None, 8.0)  # type: ignore[arg-type]  # `due` reads no store
    long_statement = _waiting(1, "active", 9.0)
    assert not stalled.due(long_statement, now=100.0)  # first seen now
    assert not stalled.due(long_statement, now=103.9)
    assert stalled.due(long_statement, now=104.0)  # waiting half of `after` by our clock
    young = _waiting(2, "active", 7.9)
    assert not stalled.due(young, now=90.0)
    assert not stalled.due(young, now=200.0)  # the server's clock says under `after`
    assert not stalled.due(_waiting(3, "idle in transaction", 8.5), now=300.0)
    assert stalled.due(_waiting(3, "idle in transaction", 9.0), now=304.0)
