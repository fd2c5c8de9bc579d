"""PostgreSQL: a transaction of the bridge's that waits for its next statement longer than
`database_timeout` is ended by the server, and its locks with it.

A bridge instance frozen inside a transaction (a paused virtual machine, SIGSTOP, a host
stalled in swap) keeps its TCP connection alive (its kernel answers for it), so the
server kept the transaction, its row locks and the duplicate check's advisory locks, for
as long as the freeze lasted: the other instances' claims skipped the rows, and a copy of
the mail at another instance waited and got 451 until the frozen one woke. Each session
now has `idle_in_transaction_session_timeout` = `database_timeout`. The stalled client is
played here by a thread that sleeps between two statements; the whole freeze, with two
bridges, is tests/reliability/test_frozen_instance.py.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bridge.db.engine import open_engine
from tests.conftest import fresh_postgres

pytestmark = pytest.mark.postgres

KEY = 4242  # an advisory lock, as the duplicate check takes one per dedupe key


def test_a_transaction_left_waiting_past_database_timeout_is_ended_with_its_locks(
    postgres_server: str,
) -> None:
    url = fresh_postgres(postgres_server)
    stalled = open_engine(url, timeout=2.0)  # the running bridge's database_timeout: 2 s
    other = open_engine(url)  # another instance
    try:
        with stalled.connect() as conn:
            conn.begin()
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": KEY})
            with other.connect() as o:
                taken = o.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": KEY})
                assert taken.scalar() is False  # held while the transaction runs
            time.sleep(3.5)  # frozen between two statements, past database_timeout
            with other.connect() as o:  # the server ended it: the lock is free
                taken = o.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": KEY})
                assert taken.scalar() is True
            # The frozen client's next statement fails as a lost connection (the store's
            # StorageUnreachable: a 451, every database thread connects anew).
            with pytest.raises(DBAPIError) as failed:
                conn.execute(text("SELECT 1"))
            assert failed.value.connection_invalidated
        with stalled.connect() as conn:  # and the engine goes on with a new one
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        stalled.dispose()
        other.dispose()


def test_commands_get_a_minute(postgres_server: str) -> None:
    """An engine without the running bridge's database_timeout (commands, start-up): 60 s."""
    engine = open_engine(fresh_postgres(postgres_server))
    try:
        with engine.connect() as conn:
            shown = conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar()
        assert shown == "1min"
    finally:
        engine.dispose()
