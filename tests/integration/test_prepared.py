"""The hot statements run on the driver (`bridge.db.prepared`) read and write what
SQLAlchemy's `conn.execute` reads and writes, on SQLite and on a throwaway PostgreSQL:
same rows, in the same order, with values of the same types, and the same rows left
in the tables."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, bindparam, event, func, select
from sqlalchemy.exc import IntegrityError

from bridge.db import prepared
from bridge.db.bulk import bulk_insert
from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.engine import open_engine, upgrade
from bridge.db.queue import _select, _take
from bridge.db.store import Store, run_sync
from bridge.errors import StorageUnavailable
from bridge.inbound.store import (
    _ASSIGNMENTS,
    _NEWEST_CONVERSATIONS,
    _PG_PAIRS,
    _newest_of_sqlite,
    assignments_for,
    conversation_senders,
    newest_conversations_values,
)
from bridge.mt import orders as order_sql
from bridge.mt.mails import _EARLIER_COPIES, insert_mails
from bridge.mt.receipts import (
    _DUE_UNCONFIRMED,
    _MATCHED,
    _MATCHED_SQLITE,
    _OLD_NEW,
    _OPEN_PARTS,
    insert_receipt,
)
from bridge.mt.submitted import Submitted, record_submitted_many
from bridge.mt.tables import Mail, Order, OrderEvent, Part, Receipt
from bridge.notices.queue import _QUEUE as NOTICE_QUEUE
from bridge.outcomes.dsn_queue import _RAW
from bridge.outcomes.final_row import FINAL_ROWS, FINAL_ROWS_BY_DIALECT
from bridge.outcomes.steps import STEPS
from bridge.values import Receipt as ReceiptValue
from bridge.values import ReceiptState
from tests.conftest import fresh_postgres
from tests.integration.test_store import _mail, _seed
from tests.integration.test_store_statements import statements

_order = table(Order)
LISTS: tuple[list[str], ...] = (
    [],
    ["M1.1"],
    ["M1.2", "M2.1"],
    ["M2.2", "nope", "M1.3"],
    ["M1.1", "M1.1", "M3.1"],
    ["M1.1", "M1.2", "M1.3", "M2.1", "M2.2", "M3.1", "M3.2", "M3.3", "x"],
)


def _world(engine: Engine) -> dict[str, Any]:
    """Mails with orders (one express), some submitted (one with two parts), receipts for
    some of their parts and one for no part, reply assignments, one final order."""
    user_id = _seed(engine)
    mails = [_mail(user_id, f"M{n}", recipients=3) for n in (1, 2, 3)]
    express = replace(mails[1].orders[0], priority=1)
    mails[1] = replace(mails[1], orders=(express, *mails[1].orders[1:]))
    run_sync(engine, insert_mails, mails)
    t0 = utcnow()
    submitted = [
        Submitted("M1.1", "smsc", ("a1", "a2"), submitted_at=t0),
        Submitted("M1.2", "smsc", ("b1",), submitted_at=t0),
        Submitted("M3.1", "smsc", ("c1",), submitted_at=t0, receipt_due=t0),
    ]
    run_sync(engine, record_submitted_many, t0, submitted, steps=STEPS)
    later = t0 + timedelta(seconds=1)
    for smsc_id, state in (("a1", ReceiptState.DELIVERED), ("b1", ReceiptState.UNDELIVERABLE)):
        run_sync(engine, insert_receipt, ReceiptValue("smsc", smsc_id, state), later)
    run_sync(engine, insert_receipt, ReceiptValue("smsc", "zz", ReceiptState.DELIVERED), t0)
    run_sync(engine, order_sql.record_final, "M2.3", later, "failed", "no", steps=STEPS)
    return {"user_id": user_id, "t0": t0, "later": later}


def _same(conn: Connection, statement: Any, values: dict[str, Any], ordered: bool) -> list[Any]:
    """The statement's rows both ways, checked equal (values and their types); the rows."""
    slow = [tuple(r) for r in conn.execute(statement, values).all()]
    fast = [tuple(r) for r in prepared.fetch(conn, statement, values)]
    if not ordered:
        slow, fast = sorted(slow, key=repr), sorted(fast, key=repr)
    assert fast == slow, statement
    assert [[type(v) for v in r] for r in fast] == [[type(v) for v in r] for r in slow]
    return fast


def test_the_reads_give_what_sqlalchemy_gives(engine: Engine) -> None:
    world = _world(engine)
    t0, user_id = world["t0"], world["user_id"]
    far = t0 + timedelta(days=9)
    with engine.connect() as conn, conn.begin():
        for ids in LISTS:
            found = _same(conn, FINAL_ROWS, {"order_ids": ids}, ordered=False)
            assert len(found) == len({i for i in ids if i.startswith("M")})
            if conn.dialect.name == "postgresql":  # its own form (LATERAL) finds the same
                unique = {"order_ids": list(dict.fromkeys(ids))}
                own = _same(conn, FINAL_ROWS_BY_DIALECT["postgresql"], unique, ordered=False)
                assert own == found
            _same(conn, _OPEN_PARTS, {"ids": ids}, ordered=False)
        matched = _MATCHED[conn.dialect.name]
        for at in (t0 - timedelta(days=1), t0 + timedelta(seconds=5)):
            for limit in (1, 2, 100):
                values = {"limit": limit, "since": at}
                rows = _same(conn, matched, values, ordered=True)
                # PostgreSQL's own form (LATERAL) finds what the portable one finds; with
                # limit 1 too, where the oldest new receipt has no part ("zz")
                assert rows == [tuple(r) for r in conn.execute(_MATCHED_SQLITE, values)]
                _same(conn, _OLD_NEW, {"cutoff": at, "limit": limit}, ordered=True)
                _same(conn, _DUE_UNCONFIRMED, {"now": at, "limit": limit}, ordered=True)
        assert len(_same(conn, matched, {"limit": 100, "since": t0}, ordered=True)) == 2
        for queue in (order_sql._QUEUE, NOTICE_QUEUE):
            for n, lane in enumerate(queue.lanes):
                query = _select(queue, lane, conn.dialect.name, ())
                for limit in (1, 2, 10):
                    rows = _same(conn, query, {"now": far, "limit": limit}, ordered=True)
                    assert queue is NOTICE_QUEUE or len(rows) == (1 if n == 0 else min(limit, 4))
        numbers = [o.recipient for o in _mail(user_id, "M1", recipients=3).orders]
        dialect = conn.dialect.name
        newest = _NEWEST_CONVERSATIONS[dialect]
        for users in ([user_id], [user_id, user_id + 1]):
            for wanted in (numbers, numbers[:1], ["+4917000000"], []):
                pairs = [(u, n) for u in users for n in wanted]
                values = newest_conversations_values(dialect, pairs, t0 - timedelta(days=1))
                rows = _same(conn, newest, values, ordered=False)
                if dialect == "postgresql":  # LATERAL: what the portable form finds
                    portable = conn.execute(_newest_of_sqlite(_PG_PAIRS), values)
                    assert sorted(rows) == sorted(tuple(r) for r in portable)
        values = newest_conversations_values(
            dialect, [(user_id, n) for n in numbers], t0 - timedelta(days=1)
        )
        rows = _same(conn, newest, values, ordered=False)
        assert len(rows) == 2  # M1.1 and M1.2 were submitted
        for mail_id in ("M1", "M3", "nope"):
            _same(conn, _RAW, {"mail_id": mail_id}, ordered=True)
        for keys in ([], ["k"], ["k", "l", "m"]):
            _same(conn, _EARLIER_COPIES, {"keys": keys, "since": t0}, ordered=True)
        for cap in (1, 2, 100):  # the rate limits' count, stopped at the cap
            for since in (t0 - timedelta(days=1), far):
                values = {"user_id": user_id, "since": since, "cap": cap}
                _same(conn, order_sql._COUNT_ORDERS_SINCE, values, ordered=True)


def _tables(conn: Connection) -> list[Any]:
    out: list[Any] = []
    for model in (Mail, Order, Part, Receipt, OrderEvent):
        t = table(model)
        out += conn.execute(select(t).order_by(*t.primary_key.columns)).all()
    return out


def test_the_writes_write_what_sqlalchemy_writes(engine: Engine) -> None:
    """The claim's lease, the final updates: same rows returned or counted, same rows left."""
    world = _world(engine)
    t0 = world["t0"]
    far = t0 + timedelta(days=9)
    runs: list[tuple[Any, dict[str, Any], bool]] = []
    for ids in LISTS:
        runs.append((_take(order_sql._QUEUE), {"ids": ids, "now": far, "until": far}, True))
        values = {"f_ids": ids, "f_status": "expired", "f_at": far, "f_error": "late"}
        values |= {"f_cause": "retries-exhausted", "f_code": None}
        runs.append((order_sql._SET_FINAL_MANY, values, True))
    for order_id in ("M1.1", "M2.3", "M3.3", "nope"):
        values = {"f_id": order_id, "f_status": "failed", "f_at": far, "f_error": "x"}
        values |= {"f_cause": "smsc-refused", "f_code": 0x0B}
        runs.append((order_sql._SET_FINAL, values, False))
    for statement, values, returns in runs:
        found = []
        for run in (_sqlalchemy, _prepared):
            with engine.connect() as conn, conn.begin() as tx:
                result = run(conn, statement, values, returns)
                found.append((result, _tables(conn)))
                tx.rollback()
        assert found[0] == found[1], (statement, values)


def _sqlalchemy(conn: Connection, statement: Any, values: dict[str, Any], returns: bool) -> Any:
    result = conn.execute(statement, values)
    return sorted(tuple(r) for r in result.all()) if returns else result.rowcount


def _prepared(conn: Connection, statement: Any, values: dict[str, Any], returns: bool) -> Any:
    if returns:
        return sorted(tuple(r) for r in prepared.fetch(conn, statement, values))
    return prepared.execute(conn, statement, values)


def test_in_lists_do_not_make_a_statement_per_length(engine: Engine) -> None:
    """PostgreSQL: one SQL text for every length (an array). SQLite: one per size 1, 2, 4,
    8 …, and the claim's lease still looks each id up by its key (a list from json_each
    made SQLite scan every due order instead)."""
    plan = prepared.plan(FINAL_ROWS, engine.dialect, ("order_ids",))
    texts = {
        n: prepared.parameters(plan, {"order_ids": [f"M{i}" for i in range(n)]})[0]
        for n in (0, 1, 2, 3, 4, 5, 8, 9, 30)
    }
    if engine.dialect.name == "postgresql":
        assert len(set(texts.values())) == 1 and "= ANY(" in texts[1]
        return
    assert len(set(texts.values())) == 6  # 1, 2, 4, 8, 16 and 32 places
    assert texts[0] == texts[1] and texts[3] == texts[4] and texts[5] == texts[8]
    # SQLite plans the lists it is given as SQLAlchemy's (a list from json_each(?) made it
    # scan the due orders for the claim's lease instead of looking the ids up)
    _world(engine)
    far = utcnow() + timedelta(days=9)
    with engine.connect() as conn:
        cases: tuple[tuple[Any, str, dict[str, Any]], ...] = (
            (_take(order_sql._QUEUE), "ids", {"now": far, "until": far}),
            (
                order_sql._SET_FINAL_MANY,
                "f_ids",
                {"f_status": "x", "f_at": far, "f_error": "", "f_cause": "", "f_code": None},
            ),
            (FINAL_ROWS, "order_ids", {}),
        )
        for statement, name, values in cases:
            for n in (1, 3, 4, 9):
                values = {**values, name: [f"M{i % 3 + 1}.{i % 2 + 1}" for i in range(n)]}
                expanded = statement.compile(dialect=engine.dialect).construct_expanded_state(
                    values
                )
                theirs = _query_plan(conn, expanded.statement, expanded.positional_parameters)
                plan = prepared.plan(statement, engine.dialect, tuple(values))
                assert _query_plan(conn, *prepared.parameters(plan, values)) == theirs


def _query_plan(conn: Connection, sql: str, params: Any) -> list[str]:
    return [str(s[3]) for s in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()]


def _clash(conn: Connection) -> None:
    """A part row again, with its id: the key is taken."""
    part = table(Part)
    row = conn.execute(select(part).order_by(part.c.id).limit(1)).one()
    bulk_insert(conn, part, [dict(row._mapping)])


def test_a_statement_that_fails_fails_as_through_sqlalchemy(engine: Engine) -> None:
    """A database error on the driver is SQLAlchemy's (IntegrityError here), as from
    `conn.execute`."""
    _world(engine)
    with engine.connect() as conn, conn.begin(), pytest.raises(IntegrityError):
        _clash(conn)


async def test_the_store_answers_storage_unavailable(store: Store) -> None:
    """... so the store answers StorageUnavailable for it, as it always did."""
    _world(store.engine)
    with pytest.raises(StorageUnavailable):
        await store.call(_clash)


def test_conversation_senders_reads_what_it_read(engine: Engine) -> None:
    """The intake's lookup through the plan: a submitted order's number keeps its sender."""
    world = _world(engine)
    user_id, t0 = world["user_id"], world["t0"]
    numbers = [o.recipient for o in _mail(user_id, "M1", recipients=3).orders]
    wanted = [(user_id, n, t0 - timedelta(hours=1)) for n in numbers]
    wanted += [(user_id, numbers[0], t0 + timedelta(hours=1)), (user_id + 7, numbers[0], t0)]
    found: Callable[..., list[str | None]] = conversation_senders
    assert run_sync(engine, found, wanted) == ["ACME", "ACME", None, None, None]


def test_reply_assignment_reads_give_what_sqlalchemy_gives(engine: Engine) -> None:
    """The inbound SMS's lookup of who a texter's answer belongs to, each way of narrowing
    it, both ways; and `assignments_for` finds the submitted orders' assignments."""
    world = _world(engine)
    user_id, t0 = world["user_id"], world["t0"]
    numbers = [o.recipient for o in _mail(user_id, "M1", recipients=3).orders]
    with engine.connect() as conn, conn.begin():
        for (by_sender, by_customer), query in _ASSIGNMENTS.items():
            for msisdn in (*numbers, "+4917000000"):
                for origins in (["order"], ["order", "sms2mail"], []):
                    values: dict[str, Any] = {
                        "msisdn": msisdn,
                        "since": t0 - timedelta(hours=1),
                        "origins": origins,
                    }
                    if by_sender:
                        values["sender_id"] = "ACME"
                    if by_customer:
                        values["customer_id"] = 1
                    _same(conn, query, values, ordered=True)
        found = assignments_for(conn, numbers[0], "ACME", t0, 1)
        assert [(a.order_id, a.sender_id) for a in found] == [("M3.1", "ACME"), ("M1.1", "ACME")]
        assert assignments_for(conn, numbers[2], "ACME", t0, 1) == []


def test_with_a_cursor_listener_the_same_statement_goes_through_sqlalchemy(
    engine: Engine,
) -> None:
    """A connection with cursor events (a statement count) runs the plan's SQL through
    SQLAlchemy's execution, so the listener sees it; the rows are the same."""
    _world(engine)
    values = {"order_ids": ["M1.1", "M2.2", "M3.1"]}
    with engine.connect() as conn, conn.begin():
        direct = prepared.fetch(conn, FINAL_ROWS, values)
    with statements(engine) as seen, engine.connect() as conn, conn.begin():
        listened = prepared.fetch(conn, FINAL_ROWS, values)
    sql, _ = prepared.parameters(prepared.plan(FINAL_ROWS, engine.dialect, ("order_ids",)), values)
    assert seen == [sql]
    assert sorted(map(tuple, listened), key=repr) == sorted(map(tuple, direct), key=repr)
    assert len(direct) == 3


def test_a_savepoint_undoes_only_its_block_and_the_transaction_goes_on(engine: Engine) -> None:
    """`prepared.savepoint`: a block that raises has its writes undone, the transaction
    stays usable (on PostgreSQL too after a failed statement, which aborts a transaction
    until it is rolled back to the savepoint), and what came before and after commits."""
    user_id = _seed(engine)
    mails = [_mail(user_id, f"M{n}") for n in (1, 2, 3)]
    with engine.begin() as conn:
        insert_mails(conn, mails[:1])
        with pytest.raises(RuntimeError), prepared.savepoint(conn):
            insert_mails(conn, mails[1:2])  # written, then undone
            raise RuntimeError("a bug in the block")
        with pytest.raises(IntegrityError), prepared.savepoint(conn, "again"):
            insert_mails(conn, mails[:1])  # a duplicate key: the database refuses it
        with prepared.savepoint(conn):
            insert_mails(conn, mails[2:])
    with engine.connect() as conn:
        kept = sorted(r.id for r in conn.execute(select(table(Mail).c.id)))
    assert kept == ["M1", "M3"]


@pytest.mark.postgres
def test_postgres_runs_the_statements_of_a_connection_on_one_cursor(postgres_server: str) -> None:
    """On PostgreSQL the hot statements of one driver connection share a cursor, across
    transactions (a new psycopg cursor costs ~16 µs a statement more); a statement that
    fails, or a read of more than `_KEEP_AFTER_ROWS` rows, leaves the next statement a
    new cursor, and every statement reads and writes what it should."""
    import psycopg

    url = fresh_postgres(postgres_server)
    eng = open_engine(url)
    upgrade(eng)
    eng.dispose()  # the connections from here on count their cursors
    made: list[psycopg.Cursor[Any]] = []

    class Counted(psycopg.Cursor[Any]):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    event.listen(eng.pool, "connect", lambda dbapi, _: setattr(dbapi, "cursor_factory", Counted))
    assert not eng._has_events, "cursor events (left by another test?): SQLAlchemy's path"
    try:
        _world(eng)
        values = {"order_ids": ["M1.1", "M2.2", "M3.1"]}
        with eng.connect() as conn:
            made.clear()
            for _ in range(3):
                with conn.begin():
                    for _ in range(4):
                        assert len(prepared.fetch(conn, FINAL_ROWS, values)) == 3
            assert len(made) <= 1  # (the connection's, if _world's statements ran on another)
            with conn.begin():
                kept = _cursor_of(conn)
                with pytest.raises(IntegrityError), prepared.savepoint(conn):
                    _clash(conn)
                assert kept.closed  # the failed statement's cursor
                assert len(prepared.fetch(conn, FINAL_ROWS, values)) == 3
                kept = _cursor_of(conn)
                many = prepared.fetch(conn, _SERIES, {"n": prepared._KEEP_AFTER_ROWS + 1})
                assert [r.n for r in many] == list(range(1, prepared._KEEP_AFTER_ROWS + 2))
                assert kept.closed  # not kept with the rows it read
                assert len(prepared.fetch(conn, FINAL_ROWS, values)) == 3
                assert not _cursor_of(conn).closed
    finally:
        eng.dispose()


def _cursor_of(conn: Connection) -> Any:
    """The cursor the connection keeps for its next hot statement."""
    return conn.connection.info[prepared._CURSOR]


_SERIES = select(func.generate_series(1, bindparam("n")).label("n"))
