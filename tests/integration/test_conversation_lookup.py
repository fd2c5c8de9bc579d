"""The intake's conversation lookup (`bridge.inbound.store.conversation_senders`, run in
every group commit of mails) does work that does not grow with the history of reply
assignments: neither with how many numbers a user has texted (one user, many numbers)
nor with how often a user texted one number (an alerting system and its on-call phone).

Work is counted, not timed: SQLite's virtual-machine steps (a progress handler), and on
PostgreSQL the pages its plan touches (EXPLAIN ANALYZE's buffers). The bound
of 1.5 × for ten times the history leaves room for a B-tree one level deeper; a lookup
that reads the history (a window over a user's rows, picked by SQLite without
statistics from the index on user_id) does about ten times the work.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert, text

from bridge.db import prepared
from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.inbound.store import (
    _NEWEST_CONVERSATIONS,
    conversation_senders,
    newest_conversations_values,
)
from bridge.inbound.tables import ReplyAssignment
from tests.integration.test_store import _seed

_assign = table(ReplyAssignment)
SMALL, LARGE = 300, 3000
ON_CALL = "+491709990000"


def _history(conn: Connection, user_id: int, shape: str, rows: int) -> None:
    """`rows` assignments of the user over the last six days: to as many numbers ("wide")
    or all to the on-call number ("deep"); plus as many of another user."""
    now = utcnow()

    def row(user: int, i: int) -> dict[str, Any]:
        number = ON_CALL if shape == "deep" else f"+4917{user:02d}{i:07d}"
        return {
            "msisdn": number,
            "sender_id": f"S{i % 7}",
            "customer_id": 1,
            "user_id": user,
            "address": "alice@example.com",
            "origin": "order",
            "order_id": f"H{user}.{i}",
            "message_id": "",
            "subject": "",
            "text": "",
            "created_at": now - timedelta(days=6) + timedelta(seconds=i),
            "expires_at": now + timedelta(days=1),
        }

    conn.execute(insert(_assign), [row(u, i) for u in (user_id, user_id + 1) for i in range(rows)])


def _asks(user_id: int) -> list[tuple[int, str, Any]]:
    """What one group commit of three mails asks: the on-call number, a number of the
    history, two numbers never texted."""
    since = utcnow() - timedelta(days=7)
    numbers = [ON_CALL, f"+4917{user_id:02d}0000005", "+491701111111", "+491702222222"]
    return [(user_id, n, since) for n in numbers]


def _sqlite_steps(conn: Connection, call: Callable[[], object]) -> int:
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    driver = conn.connection.dbapi_connection
    assert driver is not None
    driver.set_progress_handler(count, 10)
    try:
        call()
    finally:
        driver.set_progress_handler(None, 0)
    return steps


def _postgres_pages(conn: Connection, user_id: int) -> int:
    """Pages (buffers) the lookup's plan touched: index and table pages, every loop."""
    asks = _asks(user_id)
    values = newest_conversations_values(
        "postgresql", sorted({(u, n) for u, n, _ in asks}), min(a[2] for a in asks)
    )
    plan = prepared.plan(_NEWEST_CONVERSATIONS["postgresql"], conn.dialect, tuple(values))
    sql, params = prepared.parameters(plan, values)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
    row = cursor.fetchone()
    assert row is not None
    (doc,) = row
    top = (doc if isinstance(doc, list) else json.loads(doc))[0]["Plan"]
    return int(top["Shared Hit Blocks"] + top["Shared Read Blocks"])


def _work(engine: Engine, user_id: int, shape: str, rows: int) -> tuple[int, list[str | None]]:
    with engine.begin() as conn:
        conn.execute(_assign.delete())
        _history(conn, user_id, shape, rows)
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE reply_assignment"))
    with engine.connect() as conn, conn.begin():
        found = conversation_senders(conn, _asks(user_id))
        if engine.dialect.name == "sqlite":
            work = _sqlite_steps(conn, lambda: conversation_senders(conn, _asks(user_id)))
        else:
            work = _postgres_pages(conn, user_id)
    return work, found


@pytest.mark.parametrize("shape", ["wide", "deep"])
def test_the_lookup_does_the_same_work_with_ten_times_the_history(
    engine: Engine, shape: str
) -> None:
    user_id = _seed(engine)
    small, found_small = _work(engine, user_id, shape, SMALL)
    large, found_large = _work(engine, user_id, shape, LARGE)
    assert small > 0
    assert large <= 1.5 * small, (shape, small, large)
    # and it still finds the conversations: the on-call number's newest sender, the texted
    # number's, none for the two others
    newest = f"S{(LARGE - 1) % 7}" if shape == "deep" else None
    assert found_large[0] == newest
    assert found_large[1] == (None if shape == "deep" else "S5")
    assert found_large[2:] == [None, None]
    assert found_small[2:] == [None, None]
