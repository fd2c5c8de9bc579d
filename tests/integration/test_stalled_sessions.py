"""A session of the bridge's role stalled in the middle of a pipeline is ended after
`database_timeout` by another instance (`bridge/db/stalled.py`), on a real PostgreSQL.

The stalled client is a psycopg connection that sends the first statement of a
pipeline and then nothing (its thread waits, as a frozen instance's would): the server
waits for the rest of the batch, `active` on `ClientRead`, and its own
`idle_in_transaction_session_timeout` never runs — the test shows that first, then
that the instance's step ends the session and its transaction's locks go with it.
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
from bridge.db.stalled import StalledSessions, Waiting
from bridge.db.store import Store
from tests.conftest import fresh_postgres

pytestmark = pytest.mark.postgres

AFTER = 3.0  # database_timeout here
LOCK = 4242  # the advisory lock the stalled transaction holds


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def _stalled(url: str, application: str) -> Iterator[int]:
    """A connection inside a transaction holding advisory lock LOCK, stopped in the middle
    of a pipeline (its server's idle timer 1 s: the server's own rule, which does not
    apply there); yields its server pid. Let go at the end."""
    go = threading.Event()
    started: list[int] = []
    ready = threading.Event()

    def client() -> None:
        try:
            with psycopg.connect(_conninfo(url), application_name=application) as conn:
                conn.execute("SET idle_in_transaction_session_timeout = 1000")
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
                started.append(conn.info.backend_pid)
                with conn.pipeline():
                    conn.execute("SELECT 1")
                    conn.pgconn.flush()  # the first of the batch reaches the server
                    ready.set()
                    go.wait(30)
        except psycopg.OperationalError:
            pass  # ended under it: what the first test wants
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


async def test_a_session_stalled_in_a_pipeline_is_ended_after_database_timeout(url: str) -> None:
    store = Store(open_engine(url, timeout=AFTER), timeout=AFTER)
    stalled = StalledSessions(store, AFTER)
    try:
        with _stalled(url, "frozen-instance") as pid:
            began = time.monotonic()
            assert _alive(url, pid) == "active/ClientRead"
            assert not _lock_free(url)
            # the server's own idle timer (1 s) does not end it; nor the step before AFTER
            while time.monotonic() - began < AFTER - 0.5:
                await stalled.step()
                await asyncio.sleep(stalled.step_every)
            assert _alive(url, pid) == "active/ClientRead"
            assert stalled.ended == 0
            while _alive(url, pid) is not None:
                assert time.monotonic() - began < AFTER + 3 * stalled.step_every + 2, (
                    "not ended in time"
                )
                await stalled.step()
                await asyncio.sleep(stalled.step_every)
            assert stalled.ended == 1
            assert _lock_free(url), "the stalled transaction's lock is still held"
    finally:
        await store.close()


async def test_sessions_not_stalled_or_not_ours_are_left_alone(url: str) -> None:
    """A session of ours idle outside a transaction, one idle inside one (the server's
    timer is for those), and another role's session stalled in a pipeline: none is
    ended."""
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
            psycopg.connect(_conninfo(url)) as in_transaction,
            _stalled(other, "someone-else") as pid,
        ):
            idle.execute("SELECT 1")
            idle.commit()
            in_transaction.execute("SELECT 1")  # left open
            began = time.monotonic()
            while time.monotonic() - began < 3.0:
                await stalled.step()
                await asyncio.sleep(stalled.step_every)
            assert stalled.ended == 0
            assert _alive(url, pid) == "active/ClientRead"
            assert idle.execute("SELECT 1").fetchone() == (1,)
            assert in_transaction.execute("SELECT 2").fetchone() == (2,)
    finally:
        await store.close()


def test_due_needs_the_servers_time_and_ours() -> None:
    """A long statement followed by a moment's wait is not due: the server's time since
    the statement began is over `after`, ours since it was first seen waiting is not."""
    stalled = StalledSessions(None, 8.0)  # type: ignore[arg-type]  # `due` reads no store
    long_statement = Waiting((1, 0, 0, "ClientRead"), 1, "ClientRead", "", "", "", 9.0)
    assert not stalled.due(long_statement, now=100.0)  # first seen now
    assert not stalled.due(long_statement, now=103.9)
    assert stalled.due(long_statement, now=104.0)  # waiting half of `after` by our clock
    young = Waiting((2, 0, 0, "ClientRead"), 2, "ClientRead", "", "", "", 7.9)
    assert not stalled.due(young, now=90.0)
    assert not stalled.due(young, now=200.0)  # the server's clock says under `after`
