"""The rate limits' count of a user's recent orders (`count_orders_since`, at every RCPT of
a user with a limit) stops at the limit + 1: a sender of thousands of SMS a day is not
counted in full at every recipient. Work is counted in SQLite's VM steps, not timed."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from bridge.db.clock import utcnow
from bridge.db.store import run_sync
from bridge.mt.mails import insert_mails
from bridge.mt.orders import count_orders_since
from tests.integration.test_conversation_lookup import _sqlite_steps
from tests.integration.test_store import _mail, _seed


def _counted(engine: Engine, user_id: int, cap: int) -> tuple[int, int]:
    since = utcnow() - timedelta(hours=1)
    with engine.connect() as conn, conn.begin():
        found = count_orders_since(conn, user_id, since, cap)
        steps = (
            _sqlite_steps(conn, lambda: count_orders_since(conn, user_id, since, cap))
            if engine.dialect.name == "sqlite"
            else 0
        )
    return found, steps


def test_the_count_is_exact_below_the_cap_and_stops_at_it(engine: Engine) -> None:
    user_id = _seed(engine)
    run_sync(engine, insert_mails, [_mail(user_id, "M1", recipients=60)])
    assert _counted(engine, user_id, 100)[0] == 60
    assert _counted(engine, user_id, 61)[0] == 60
    found, few = _counted(engine, user_id, 11)
    assert found == 11
    run_sync(engine, insert_mails, [_mail(user_id, f"M{n}", recipients=60) for n in range(2, 11)])
    assert _counted(engine, user_id, 1_000)[0] == 600
    found, many = _counted(engine, user_id, 11)
    assert found == 11
    # ten times the orders in the window, the same work up to the cap
    assert many <= 1.5 * few, (few, many)
