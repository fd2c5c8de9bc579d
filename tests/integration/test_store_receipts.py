"""Message ids that are not unique, receipt matching and the receipt timeout, on a real database."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, event, update

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.engine import open_engine
from bridge.db.store import Connection, Store
from bridge.errors import StorageUnreachable
from bridge.intake.commit import IntakeMail, accept
from bridge.mt import orders as order_sql
from bridge.mt.dispatch_record import Outcome, OutcomeKind, Recorder
from bridge.mt.receipts import apply_receipts, finish_unconfirmed, insert_receipt
from bridge.mt.submitted import Submitted, record_submitted_many
from bridge.mt.tables import Order, OrderEvent, Part, Receipt
from bridge.notices.tables import Notice
from bridge.outcomes.steps import STEPS
from bridge.values import Receipt as ReceiptValue
from bridge.values import ReceiptState
from tests.integration.test_store import _mail, _rows, _seed

DELIVERED = ReceiptState.DELIVERED
WINDOW = 3600.0

Item = TypeVar("Item")
R = TypeVar("R")


def _submitted(order_id: str, ids: tuple[str, ...], at: object) -> Submitted:
    return Submitted(order_id, "smsc", ids, submitted_at=at)  # type: ignore[arg-type]


def _receipt(message_id: str, state: ReceiptState = DELIVERED) -> ReceiptValue:
    return ReceiptValue("smsc", message_id, state)


def _statuses(engine: Engine) -> dict[str, str]:
    return {r.id: r.status for r in _rows(engine, Order)}


async def test_a_restarted_counter_receipt_goes_to_the_most_recent_part_before_it(
    engine: Engine, store: Store
) -> None:
    user_id = _seed(engine)
    await accept(store, IntakeMail(_mail(user_id, recipients=3)))
    t0 = utcnow()
    t1, t2, t3 = (t0 + timedelta(seconds=s) for s in (10, 20, 30))
    # Yesterday's message got "7" and is still under way; the SMSC restarted its counter.
    await store.call(record_submitted_many, t0, [_submitted("M1.1", ("7",), t0)], steps=STEPS)
    await store.call(insert_receipt, _receipt("7", ReceiptState.DELIVERED), t1)
    await store.call(apply_receipts, t1, 100, WINDOW, steps=STEPS)
    assert _statuses(engine)["M1.1"] == "delivered"
    # Now "7" goes to another message: the order M1.1 is final, so nothing is ambiguous.
    await store.call(record_submitted_many, t2, [_submitted("M1.2", ("7",), t2)], steps=STEPS)
    await store.call(insert_receipt, _receipt("7", ReceiptState.UNDELIVERABLE), t3)
    await store.call(apply_receipts, t3, 100, WINDOW, steps=STEPS)
    assert _statuses(engine) == {"M1.1": "delivered", "M1.2": "undeliverable", "M1.3": "queued"}
    applied = {r.id: r.part_id for r in _rows(engine, Receipt)}
    parts = {p.id: p.order_id for p in _rows(engine, Part)}
    assert [parts[p] for p in applied.values()] == ["M1.1", "M1.2"]


async def test_an_id_given_to_two_open_messages_matches_neither(
    engine: Engine, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    user_id = _seed(engine)
    await accept(store, IntakeMail(_mail(user_id, recipients=3)))
    t0 = utcnow()
    await store.call(record_submitted_many, t0, [_submitted("M1.1", ("5001",), t0)], steps=STEPS)
    t1 = t0 + timedelta(seconds=5)  # M1.1 still waits for its report: "5001" is reused
    await store.call(
        record_submitted_many,
        t1,
        [_submitted("M1.2", ("5001",), t1), _submitted("M1.3", ("5002",), t1)],
        steps=STEPS,
    )
    t2 = t1 + timedelta(seconds=1)
    await store.call(insert_receipt, _receipt("5001"), t2)
    await store.call(insert_receipt, _receipt("5002"), t2)
    with caplog.at_level(logging.WARNING):
        result = await store.call(apply_receipts, t2, 100, WINDOW, steps=STEPS)
    assert "receipts cannot be told apart" in caplog.text
    assert (result.applied, result.unmatched) == (1, 1)
    assert sorted(r.status for r in _rows(engine, Receipt)) == ["applied", "unmatched"]
    assert _statuses(engine) == {"M1.1": "submitted", "M1.2": "submitted", "M1.3": "delivered"}
    matchable = {p.order_id: p.matchable for p in _rows(engine, Part)}
    assert matchable == {"M1.1": False, "M1.2": False, "M1.3": True}
    notes = [e.order_id for e in _rows(engine, OrderEvent, event="receipts")]
    assert sorted(notes) == ["M1.1", "M1.2"]
    # A later receipt for "5001" is not guessed either; the receipt timeout decides.
    await store.call(insert_receipt, _receipt("5001"), t2 + timedelta(seconds=1))
    assert (await store.call(apply_receipts, t2, 100, WINDOW, steps=STEPS)).unmatched == 1


async def test_a_receipt_waits_while_a_submit_that_began_before_it_is_recorded(
    engine: Engine, store: Store
) -> None:
    user_id = _seed(engine)
    await accept(store, IntakeMail(_mail(user_id, recipients=2)))
    t0 = utcnow()
    await store.call(record_submitted_many, t0, [_submitted("M1.1", ("9",), t0)], steps=STEPS)
    await store.call(apply_receipts, t0, 100, WINDOW, steps=STEPS)
    t1 = t0 + timedelta(seconds=10)  # a submit began; the SMSC reused "9" for it ...
    t2 = t1 + timedelta(milliseconds=5)  # ... and its receipt came before its response
    await store.call(insert_receipt, _receipt("9"), t2)
    held = await store.call(apply_receipts, t2, 100, WINDOW, {"smsc": t1}, steps=STEPS)
    assert held.applied == 0 and _statuses(engine)["M1.1"] == "submitted"
    await store.call(record_submitted_many, t2, [_submitted("M1.2", ("9",), t1)], steps=STEPS)
    await store.call(apply_receipts, t2, 100, WINDOW, steps=STEPS)
    # Both held "9" while waiting for a report: the receipt cannot say whose it is.
    assert [r.status for r in _rows(engine, Receipt)] == ["unmatched"]
    assert _statuses(engine) == {"M1.1": "submitted", "M1.2": "submitted"}


async def test_orders_final_in_one_round_are_read_once_and_each_gets_its_own_status_mail(
    engine: Engine, store: Store
) -> None:
    user_id = _seed(engine)
    await accept(store, IntakeMail(_mail(user_id, recipients=4)))
    t0 = utcnow()
    batch = [_submitted(f"M1.{n}", (f"60{n}",), t0) for n in range(1, 5)]
    await store.call(record_submitted_many, t0, batch, steps=STEPS)
    for n, state in ((1, DELIVERED), (2, ReceiptState.UNDELIVERABLE), (3, DELIVERED)):
        await store.call(insert_receipt, _receipt(f"60{n}", state), t0)
    final_reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "first_submitted_at" in statement:  # the final steps' read (outcomes.final_row)
            final_reads.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        result = await store.call(apply_receipts, t0, 100, WINDOW, steps=STEPS)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert result.finished_orders == ("M1.1", "M1.2", "M1.3")
    assert result.notices == 3  # a status mail each (notify = all)
    assert len(final_reads) == 1  # one read for the three, not one each
    assert _statuses(engine) == {
        "M1.1": "delivered",
        "M1.2": "undeliverable",
        "M1.3": "delivered",
        "M1.4": "submitted",
    }
    finals = sorted(
        (e.order_id, e.event)
        for e in _rows(engine, OrderEvent)
        if e.event in ("delivered", "undeliverable")
    )
    assert finals == [("M1.1", "delivered"), ("M1.2", "undeliverable"), ("M1.3", "delivered")]
    notices = sorted((n.order_id, n.context["status"]) for n in _rows(engine, Notice))
    assert notices == [("M1.1", "delivered"), ("M1.2", "undeliverable"), ("M1.3", "delivered")]
    # An order already final is left as it is; the others of the batch are finished.
    again = [("M1.1", "failed", "cancelled"), ("M1.4", "failed", "cancelled")]
    finished = await store.call(order_sql.record_final_many, again, t0, steps=STEPS)
    assert finished == order_sql.Finished(("M1.4",), notices=1)  # its status mail
    assert _statuses(engine)["M1.1"] == "delivered"
    assert len(_rows(engine, Notice)) == 4
    assert [e.order_id for e in _rows(engine, OrderEvent, event="failed")] == ["M1.4"]


async def test_a_receipts_round_reads_its_orders_with_their_parts_once_and_writes_history_once(
    engine: Engine, store: Store
) -> None:
    user_id = _seed(engine)
    await accept(store, IntakeMail(_mail(user_id, recipients=3)))
    t0 = utcnow()
    batch = [_submitted("M1.1", ("701", "702"), t0), _submitted("M1.2", ("703",), t0)]
    batch.append(_submitted("M1.3", ("704",), t0))
    await store.call(record_submitted_many, t0, batch, steps=STEPS)
    for message_id, state in (
        ("701", DELIVERED),
        ("702", ReceiptState.ENROUTE),
        ("703", DELIVERED),
        ("704", ReceiptState.ENROUTE),
    ):
        await store.call(insert_receipt, _receipt(message_id, state), t0)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        result = await store.call(apply_receipts, t0, 100, WINDOW, steps=STEPS, orphan=False)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert result.applied == 4 and result.finished_orders == ("M1.2",)
    # Reads: the new receipts with their parts and orders (the round saw every part of
    # these orders: no second read of their parts' states), the final row.
    assert len([s for s in statements if s.startswith("select")]) == 2
    # The round's receipt lines and the final line: one insert (was one for each).
    assert len([s for s in statements if s.startswith("insert into order_event")]) == 1
    events = sorted(_rows(engine, OrderEvent), key=lambda e: e.id)
    history = [(e.order_id, e.event, e.detail) for e in events]
    assert history[-5:] == [
        ("M1.1", "receipt", "part 1 (701): delivered"),
        ("M1.1", "receipt", "part 2 (702): enroute"),
        ("M1.2", "receipt", "part 1 (703): delivered"),
        ("M1.3", "receipt", "part 1 (704): enroute"),
        ("M1.2", "delivered", "every part delivered"),
    ]
    assert _statuses(engine) == {"M1.1": "submitted", "M1.2": "delivered", "M1.3": "submitted"}
    # A round that finishes nothing still writes its lines.
    await store.call(insert_receipt, _receipt("704", ReceiptState.ACCEPTED), t0)
    assert (await store.call(apply_receipts, t0, 100, WINDOW, steps=STEPS)).finished_orders == ()
    last = max(_rows(engine, OrderEvent), key=lambda e: e.id)
    assert (last.order_id, last.event, last.detail) == ("M1.3", "receipt", "part 1 (704): accepted")
    assert _statuses(engine)["M1.3"] == "submitted"


async def test_status_mails_of_one_round_go_in_one_insert_in_the_order_they_were_queued(
    engine: Engine, store: Store
) -> None:
    user_id = _seed(engine)  # notify = all: a status mail for every final order
    await accept(store, IntakeMail(_mail(user_id, recipients=4)))
    with engine.begin() as conn:  # M1.2's client asked for DSNs (RFC 3461 NOTIFY)
        conn.execute(
            update(table(Order)).where(table(Order).c.id == "M1.2").values(dsn_notify="SUCCESS")
        )
    t0 = utcnow()
    batch = [_submitted(f"M1.{n}", (f"80{n}",), t0) for n in range(1, 5)]
    await store.call(record_submitted_many, t0, batch, steps=STEPS)
    for n in range(1, 5):
        await store.call(insert_receipt, _receipt(f"80{n}"), t0)
    inserts: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO NOTICE"):
            inserts.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        result = await store.call(apply_receipts, t0, 100, WINDOW, steps=STEPS)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert result.finished_orders == ("M1.1", "M1.2", "M1.3", "M1.4")
    notices = [(n.order_id, n.kind) for n in sorted(_rows(engine, Notice), key=lambda n: n.id)]
    assert notices == [
        ("M1.1", "status"),
        ("M1.2", "status"),
        ("M1.2", "dsn"),
        ("M1.3", "status"),
        ("M1.4", "status"),
    ]
    assert len(inserts) == 3  # M1.1 + M1.2's status mails, M1.2's DSN, M1.3 + M1.4's


async def test_no_final_report_by_the_deadline_is_unconfirmed_with_the_notices_asked_for(
    engine: Engine, store: Store
) -> None:
    user_all = _seed(engine, notify="all")
    await accept(store, IntakeMail(_mail(user_all, "MA", recipients=2)))
    await accept(store, IntakeMail(_mail(user_all, "MF", recipients=1)))
    orders_t = table(Order)
    with engine.begin() as conn:  # this order's policy: status mails for failures only
        conn.execute(
            update(orders_t)
            .where(orders_t.c.mail_id == "MF")
            .values(policy={"notify": "failures"}, dsn_notify="SUCCESS,FAILURE")
        )
    t0 = utcnow()
    due = t0 + timedelta(seconds=60)
    batch = [
        Submitted("MA.1", "smsc", ("1", "2"), submitted_at=t0, receipt_due=due),
        Submitted("MA.2", "smsc", ("",), submitted_at=t0, receipt_due=due),
        Submitted("MF.1", "smsc", ("4",), submitted_at=t0, receipt_due=due),
    ]
    await store.call(record_submitted_many, t0, batch, steps=STEPS)
    await store.call(insert_receipt, _receipt("1"), t0)
    await store.call(insert_receipt, _receipt("2", ReceiptState.ACCEPTED), t0)
    await store.call(apply_receipts, t0, 100, WINDOW, steps=STEPS)
    early = await store.call(finish_unconfirmed, due - timedelta(seconds=1), 100, steps=STEPS)
    assert early == order_sql.Finished()
    finished = await store.call(finish_unconfirmed, due, 100, steps=STEPS)
    assert sorted(finished.ids) == ["MA.1", "MA.2", "MF.1"]
    assert finished.notices == 3  # the three notices below
    orders = {r.id: (r.status, r.error) for r in _rows(engine, Order)}
    assert {s for s, _ in orders.values()} == {"unconfirmed"}
    assert "no delivery report" in orders["MA.1"][1]
    assert "1 accepted, 1 delivered" in orders["MA.1"][1]
    assert "cannot be tied to receipts" in orders["MA.2"][1]
    notices = {(n.kind, n.order_id, n.context.get("action")) for n in _rows(engine, Notice)}
    # notify = all: a status mail each; notify = failures: none (nothing is known to have
    # failed), but the DSN its client asked for with NOTIFY=SUCCESS: Action relayed.
    assert notices == {
        ("status", "MA.1", None),
        ("status", "MA.2", None),
        ("dsn", "MF.1", "relayed"),
    }
    assert (
        await store.call(finish_unconfirmed, due + timedelta(hours=1), 100, steps=STEPS)
    ).ids == ()  # once


async def test_claims_leave_out_the_routes_whose_smsc_is_full(engine: Engine, store: Store) -> None:
    user_id = _seed(engine)
    await accept(store, IntakeMail(_mail(user_id, recipients=3)))  # +4917012345 01..03
    with engine.begin() as conn:
        orders_t = table(Order)
        conn.execute(
            update(orders_t).where(orders_t.c.id == "M1.2").values(recipient="+43664123456")
        )
    now = utcnow()
    # Routes: "+43" first, then the default; the default route's SMSC is full.
    claimed = await store.call(order_sql.claim_orders, now, 10, 60.0, [("", ("43",))])
    assert [o.id for o in claimed] == ["M1.2"]
    # The "+43" route's SMSC is full: everything else.
    await store.call(order_sql.record_parked, [("M1.2", now, None)])
    claimed = await store.call(order_sql.claim_orders, now, 10, 60.0, [("43", ())])
    assert sorted(o.id for o in claimed) == ["M1.1", "M1.3"]
    assert {r.id: r.attempts for r in _rows(engine, Order)} == {"M1.1": 1, "M1.2": 0, "M1.3": 1}


async def test_one_outcome_that_cannot_be_recorded_loses_no_other(
    engine: Engine, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    user_id = _seed(engine)
    await accept(store, IntakeMail(_mail(user_id, recipients=2)))
    await store.call(order_sql.claim_orders, utcnow(), 10, 60.0)
    recorder = Recorder(store, lambda: None, lambda: None, STEPS)
    now = utcnow()
    good = Outcome(
        "M1.1", OutcomeKind.SUBMITTED, "smsc", ("11",), submitted_at=now, receipt_due=now
    )
    gone = Outcome(
        "M9.1", OutcomeKind.SUBMITTED, "smsc", ("12",), submitted_at=now, receipt_due=now
    )
    # The history of an order that does not exist cannot be stored (a foreign key).
    broken = Outcome(
        "M9.2", OutcomeKind.DEFERRED, reason="x", next_at=now, events=(("attempt", "x"),)
    )
    deferred = Outcome("M1.2", OutcomeKind.DEFERRED, reason="throttled", next_at=now)
    with caplog.at_level(logging.WARNING):
        await asyncio.gather(*(recorder.record(o) for o in (gone, broken, good, deferred)))
    assert "M9.2: deferred outcome not recorded" in caplog.text
    # An accepted submit whose order no longer waits is not recorded, and fails nothing.
    assert "M9.1: accepted by smsc as 12, but it no longer waits to be sent" in caplog.text
    assert "recording its parts failed" not in caplog.text
    assert "storage unavailable" not in caplog.text
    assert _statuses(engine) == {"M1.1": "submitted", "M1.2": "deferred"}
    assert [(p.order_id, p.smsc_id) for p in _rows(engine, Part)] == [("M1.1", "11")]


async def _one_claimed_order(engine: Engine, store: Store) -> Recorder:
    """One mail to one number (order M1.1) accepted and claimed; the dispatch's recorder."""
    await accept(store, IntakeMail(_mail(_seed(engine), recipients=1)))
    await store.call(order_sql.claim_orders, utcnow(), 10, 60.0)
    return Recorder(store, lambda: None, lambda: None, STEPS)


class _LostAnswerStore(Store):
    """The real store, whose next group commit goes through but whose answer is lost: the
    connection dropped while COMMIT was under way (a failover), so the caller sees the
    error of a lost connection although the rows are stored."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.lost = 0  # group commits whose answer is lost

    async def grouped(
        self,
        fn: Callable[[Connection, list[Item]], Sequence[R]],
        item: Item,
        *,
        lane: str = "",
        after_others: bool = False,
        taken: Callable[[list[Item]], list[Item]] | None = None,
        aside: bool = False,
    ) -> R:
        if not self.lost:
            return await super().grouped(
                fn, item, lane=lane, after_others=after_others, taken=taken, aside=aside
            )
        self.lost -= 1
        await super().grouped(
            fn, item, lane=lane, after_others=after_others, taken=taken, aside=aside
        )
        raise StorageUnreachable("OperationalError: server closed the connection unexpectedly")


async def test_a_submit_whose_commit_went_through_unseen_is_recorded_once_and_delivered(
    engine: Engine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The record of an accepted submit is tried again after a lost connection; when its
    first commit had gone through, the second must not store the parts again: an order
    with two open parts for one SMS is never delivered (its receipt settles one)."""
    store = _LostAnswerStore(open_engine(database_url))
    try:
        recorder = await _one_claimed_order(engine, store)
        now = utcnow()
        due = now + timedelta(hours=1)
        accepted = Outcome(
            "M1.1", OutcomeKind.SUBMITTED, "smsc", ("41",), submitted_at=now, receipt_due=due
        )
        store.lost = 1
        with caplog.at_level(logging.WARNING):
            await asyncio.wait_for(recorder.record(accepted), 30)
        later = utcnow()
        await store.call(insert_receipt, _receipt("41"), later)
        await store.call(apply_receipts, later, 100, WINDOW, steps=STEPS)
    finally:
        await store.close()
    assert "M1.1: accepted by smsc as 41, but the database is unreachable" in caplog.text
    assert [(p.order_id, p.smsc_id) for p in _rows(engine, Part)] == [("M1.1", "41")]
    history = [e.event for e in _rows(engine, OrderEvent) if e.order_id == "M1.1"]
    assert history.count("submitted") == 1
    assert _statuses(engine) == {"M1.1": "delivered"}
    assert "M1.1: accepted by smsc as 41, but it no longer waits to be sent" in caplog.text


class _FailoverStore(Store):
    """The real store, whose next group commit meets a database that cannot be reached (as
    during a failover): it goes to a PostgreSQL port where nothing listens, so the kernel
    raises its own error for a refused connection."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # free once closed: nothing listens there
        self._down = Store(open_engine(f"postgresql://mailsms@127.0.0.1:{port}/mailsms"))
        self.unreachable = 0  # group commits that go there

    async def grouped(
        self,
        fn: Callable[[Connection, list[Item]], Sequence[R]],
        item: Item,
        *,
        lane: str = "",
        after_others: bool = False,
        taken: Callable[[list[Item]], list[Item]] | None = None,
        aside: bool = False,
    ) -> R:
        if self.unreachable:
            self.unreachable -= 1
            return await self._down.grouped(
                fn, item, lane=lane, after_others=after_others, taken=taken, aside=aside
            )
        return await super().grouped(
            fn, item, lane=lane, after_others=after_others, taken=taken, aside=aside
        )

    async def close(self) -> None:
        await self._down.close()
        await super().close()


async def test_an_accepted_submit_keeps_its_parts_when_the_database_was_unreachable(
    engine: Engine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Recording only the submitted status is for a record that cannot be written; when the
    database could not be reached, the whole record is tried again, so receipts match."""
    store = _FailoverStore(open_engine(database_url))
    try:
        recorder = await _one_claimed_order(engine, store)
        now = utcnow()
        accepted = Outcome(
            "M1.1", OutcomeKind.SUBMITTED, "smsc", ("31",), submitted_at=now, receipt_due=now
        )
        store.unreachable = 1  # the recording of the accepted submit meets the failover
        with caplog.at_level(logging.WARNING):
            await asyncio.wait_for(recorder.record(accepted), 30)
    finally:
        await store.close()
    assert "M1.1: accepted by smsc as 31, but the database is unreachable" in caplog.text
    assert "without its parts" not in caplog.text
    assert _statuses(engine) == {"M1.1": "submitted"}
    assert [(p.order_id, p.smsc_id) for p in _rows(engine, Part)] == [("M1.1", "31")]
