"""The queue claim (`bridge.db.queue.claim`) on a real database, SQLite and PostgreSQL: the
rows it gives, in what order, what it leases, and claimers side by side (instances or
processes of one bridge, each with its own connections)."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, event, select, update

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.engine import open_engine, upgrade
from bridge.db.store import run_sync
from bridge.mt import orders as order_sql
from bridge.mt.dispatch_record import Outcome, OutcomeKind, record_outcomes
from bridge.mt.mails import insert_mails
from bridge.mt.tables import Order
from bridge.outcomes.steps import STEPS
from tests.conftest import fresh_postgres
from tests.integration.test_store import _mail, _seed

_order = table(Order)


def _orders(engine: Engine, user_id: int, count: int, mail_id: str = "M1") -> list[str]:
    """A mail of `user_id` with `count` orders, due now; their ids in order."""
    mail = _mail(user_id, mail_id, recipients=count)
    run_sync(engine, insert_mails, [mail])
    return [o.id for o in mail.orders]


def _set(engine: Engine, order_id: str, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(_order).where(_order.c.id == order_id).values(**values))


def _leases(engine: Engine) -> dict[str, tuple[datetime, int]]:
    with engine.connect() as conn:
        rows = conn.execute(select(_order.c.id, _order.c.next_attempt_at, _order.c.attempts))
        return {r.id: (r.next_attempt_at, r.attempts) for r in rows}


def _claim(engine: Engine, now: datetime, limit: int) -> list[str]:
    return [o.id for o in run_sync(engine, order_sql.claim_orders, now, limit, 60.0)]


def test_a_claim_gives_express_first_then_oldest_due_and_leases_only_what_it_gives(
    engine: Engine,
) -> None:
    """Due times in another order than the orders' ids and than the rows were written in;
    three express orders. A claim across both lanes gives exactly `limit` rows in order,
    counts their attempt, and leaves every other row as it was (neither leased nor
    counted)."""
    ids = _orders(engine, _seed(engine), 9)
    t0 = utcnow() - timedelta(minutes=10)
    seconds = list(range(9))
    random.Random(7).shuffle(seconds)
    due = {order_id: t0 + timedelta(seconds=s) for order_id, s in zip(ids, seconds, strict=True)}
    written = ids[:]
    random.Random(8).shuffle(written)
    for order_id in written:
        _set(engine, order_id, next_attempt_at=due[order_id])
    express = {ids[7], ids[2], ids[5]}
    for order_id in express:
        _set(engine, order_id, priority=1)
    expected = sorted(ids, key=lambda i: (i not in express, due[i]))
    before = _leases(engine)
    now = utcnow()

    first = _claim(engine, now, 5)

    assert first == expected[:5]  # the three express, then the two oldest normal ones
    after = _leases(engine)
    for order_id in ids:
        if order_id in first:
            assert after[order_id][1] == 1 and after[order_id][0] > now
        else:
            assert after[order_id] == before[order_id], order_id
    assert _claim(engine, now, 10) == expected[5:]
    assert _claim(engine, now, 10) == []  # all leased
    assert _claim(engine, now + timedelta(seconds=61), 0) == []
    again = _claim(engine, now + timedelta(seconds=61), 100)
    assert sorted(again) == sorted(ids)  # the leases ran out
    assert {n for _, n in _leases(engine).values()} == {2}


def test_a_claim_reads_both_lanes_in_one_statement(engine: Engine) -> None:
    """Express and normal orders are selected by one statement (the lanes joined by
    `UNION ALL`), not one per lane: a claim is that select and the take (on PostgreSQL
    one statement, the take a data-modifying `WITH` over the select). A limit the
    express lane fills gives express orders only."""
    ids = _orders(engine, _seed(engine), 4)
    t0 = utcnow() - timedelta(minutes=1)
    for n, order_id in enumerate(ids):
        _set(engine, order_id, next_attempt_at=t0 + timedelta(seconds=n))
    _set(engine, ids[2], priority=1)
    statements: list[str] = []

    def seen(_c: object, _cur: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        now = utcnow()
        assert _claim(engine, now, 1) == [ids[2]]
        assert _claim(engine, now, 2) == [ids[0], ids[1]]
        assert _claim(engine, now, 5) == [ids[3]]
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    on_orders = [s for s in statements if '"order"' in s]
    per_claim = 1 if engine.dialect.name == "postgresql" else 2  # the select (and the take)
    assert len(on_orders) == 3 * per_claim, on_orders
    assert all(s.count("UNION ALL") == 1 for s in on_orders[::per_claim]), on_orders
    assert all(" FOR UPDATE SKIP LOCKED" in s for s in on_orders[::per_claim]) == (per_claim == 1)


def test_a_claim_narrowed_to_routes_with_room_keeps_the_order(engine: Engine) -> None:
    """Dispatch leaves out the orders of a route whose SMSC has no room (`skip`, a
    statement of its own): the others come in the claim's order, the left-out ones stay
    due and are claimed once their route has room."""
    ids = _orders(engine, _seed(engine), 6)
    t0 = utcnow() - timedelta(minutes=1)
    for n, order_id in enumerate(ids):
        _set(engine, order_id, next_attempt_at=t0 + timedelta(seconds=n))
    austria = {ids[0], ids[3]}
    for order_id in austria:
        _set(engine, order_id, recipient=f"+43660{order_id[-1]}000000")
    _set(engine, ids[4], priority=1)
    now = utcnow()
    claimed = [o.id for o in run_sync(engine, order_sql.claim_orders, now, 3, 60.0, (("43", ()),))]
    assert claimed == [ids[4], ids[1], ids[2]]
    assert _claim(engine, now, 10) == [ids[0], ids[3], ids[5]]


@pytest.mark.postgres
def test_a_claim_on_postgresql_passes_rows_locked_elsewhere_by(postgres_server: str) -> None:
    """A row another instance holds (locked in its open transaction) is passed by, and the
    claim still gives `limit` rows, the next ones in order; once the lock is gone, the row
    is claimed. (SQLite has no row locks: another process waits for the write lock.)"""
    url = fresh_postgres(postgres_server)
    engine = open_engine(url)
    upgrade(engine)
    ids = _orders(engine, _seed(engine), 4)
    t0 = utcnow() - timedelta(minutes=1)
    for n, order_id in enumerate(ids):
        _set(engine, order_id, next_attempt_at=t0 + timedelta(seconds=n))
    other = open_engine(url)
    try:
        with other.begin() as conn:
            locked = select(_order.c.id).where(_order.c.id == bindparam("id")).with_for_update()
            assert conn.execute(locked, {"id": ids[0]}).scalar_one() == ids[0]
            assert _claim(engine, utcnow(), 2) == ids[1:3]
        assert _claim(engine, utcnow(), 10) == [ids[0], ids[3]]
    finally:
        other.dispose()
        engine.dispose()


def test_claimers_side_by_side_take_each_row_once(engine: Engine, database_url: str) -> None:
    """Four claimers, each with an engine of its own (processes or instances of one
    bridge), claim from 150 due orders until none is left: each order is claimed by one
    of them, once, and its attempt counted once."""
    user_id = _seed(engine)
    ids = [*_orders(engine, user_id, 75, "M1"), *_orders(engine, user_id, 75, "M2")]
    now = utcnow()
    taken: list[list[str]] = [[] for _ in range(4)]
    errors: list[BaseException] = []

    def claimer(k: int) -> None:
        mine = open_engine(database_url)
        try:
            while found := _claim(mine, now, 7):
                taken[k] += found
        except BaseException as exc:  # the test reports it
            errors.append(exc)
        finally:
            mine.dispose()

    threads = [threading.Thread(target=claimer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    every = [order_id for found in taken for order_id in found]
    assert sorted(every) == sorted(ids)  # each once
    assert {n for _, n in _leases(engine).values()} == {1}


def test_what_a_claim_writes_after_losing_its_lease_leaves_the_next_claim_alone(
    engine: Engine,
) -> None:
    """An instance frozen (a paused VM) past its claim's lease wakes and records its
    attempt's outcome — a deferral, the order parked, or held — while another instance
    has claimed the order since and is sending it. That late write used to move the new
    claim's due time to the deferral's (the order claimed a third time while the second
    claim still sends it: the SMS twice), uncount the new claim's attempt, or hold an
    order another instance works on. Now it is written only under its own claim; the
    new claim's own outcome still is."""
    (order_id,) = _orders(engine, _seed(engine), 1)
    t0 = utcnow()
    (first,) = run_sync(engine, order_sql.claim_orders, t0, 1, 0.0)  # its lease: over at once
    t1 = t0 + timedelta(seconds=1)
    (second,) = run_sync(engine, order_sql.claim_orders, t1, 1, 60.0)  # another instance's
    assert (first.attempts, second.attempts) == (1, 2)
    held_by_second = _leases(engine)[order_id]
    assert held_by_second == (t1 + timedelta(seconds=60), 2)

    t2 = t1 + timedelta(seconds=5)
    late = [
        Outcome(order_id, OutcomeKind.DEFERRED, reason="late", next_at=t2, claim=first.attempts),
        Outcome(order_id, OutcomeKind.PARKED, next_at=t2, claim=first.attempts),
        Outcome(order_id, OutcomeKind.HELD, reason="Traceback", claim=first.attempts),
    ]
    for outcome in late:
        run_sync(engine, record_outcomes, [outcome], steps=STEPS)
        assert _leases(engine)[order_id] == held_by_second, outcome.kind
        assert _status(engine, order_id) == "queued", outcome.kind

    # The claim that holds the order writes its own outcome.
    mine = Outcome(order_id, OutcomeKind.DEFERRED, reason="busy", next_at=t2, claim=2)
    run_sync(engine, record_outcomes, [mine], steps=STEPS)
    assert _leases(engine)[order_id] == (t2, 2)
    assert _status(engine, order_id) == "deferred"


def _status(engine: Engine, order_id: str) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(_order.c.status).where(_order.c.id == order_id)).scalar())
