"""The work of each statement on the per-mail path does not grow with the history in the tables.

A bridge keeps its mails, orders, parts, history lines, receipts, notices, reply
assignments, stop entries, velocity rows, inbound SMS, SMPP clients' deliver_sm and
HTTP pushes for weeks. Every statement a mail runs on its way (RCPT's reads, the
intake's commit with conversations and SMS pumping checks, the queue depth, the
dispatch claim and its outcomes, a resubmit's look for pending orders, receipts, status
mails, an inbound SMS's routing and MO limit, an SMPP client's receipt and an HTTP push
queued, taken and answered) must seek what it needs: the same work with 300 mails of
history as with 3,000.

Work is counted, not timed. On SQLite: the virtual machine's steps
(`sqlite3.Connection.set_progress_handler`) around one call of each per-mail function,
as the bridge runs it (no statistics) and after ANALYZE (a plan must not turn to the
history when statistics appear). On PostgreSQL (ANALYZEd, each table's rows in no order
of time, as after months of autovacuum): the rows its scans read, with the plans it
makes for the values given and with generic plans (every statement prepared at its first
run and planned once for any parameters, as the server may plan a statement psycopg has
prepared: such plans read every notice and every order ever kept to claim notices and
count the queue, and every assignment of a number in the reply window to route its SMS,
until the statuses were written into the statements and the indexes ended in the order
they are read; every order of the table to count a sender's orders of the last
minute, until the count read them newest first; and, with SQLite's statistics too,
every deliver_sm ever sent to take an SMPP client's next one, until the outbox was
claimed by its queued rows).

The history is one user's (one customer), written with the domain's own functions:
mails to a few recurring numbers and to many distinct ones, finished orders (delivered,
undeliverable) with applied receipts and sent status mails, orders still waiting for
their receipt, opt-outs and inbound SMS. The larger history is the smaller one with
older mails added before it (a mail every five minutes), so the last minute, hour and
day hold the same rows in both and only what is older differs; the reply window (7
days) holds more of it, and a statement over that window must seek in it as well.

The bound is 1.5 ×: a seek in a B-tree ten times larger costs a level more at most (a
few steps on each index a statement touches), while a statement that reads its rows
from history reads ten times more (2–10 × where it also does constant work).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, insert

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.engine import open_engine, upgrade
from bridge.inbound.actions_store import is_stopped
from bridge.inbound.settings import InboundSettings
from bridge.inbound.status import InboundStatus
from bridge.inbound.store import (
    DEFAULT_REPLY_WINDOW,
    assignments_for,
    count_earlier,
    due_inbound,
    insert_inbound,
    limited_earlier,
    load_inbound,
    mark_inbound,
    part_exists,
)
from bridge.inbound.tables import StopEntry
from bridge.intake.backpressure import queue_depth
from bridge.intake.commit import Conversation, IntakeMail, commit_mails
from bridge.intake.velocity import VelocityCheck
from bridge.mt.dispatch_record import Claim, Outcome, OutcomeKind, record_outcomes
from bridge.mt.mails import NewMail, NewOrder
from bridge.mt.orders import claim_orders, count_orders_since, others_pending
from bridge.mt.receipts import apply_receipts, finish_unconfirmed, insert_receipts
from bridge.mt.status import FINAL_ORDER_STATUSES, OrderStatus
from bridge.mt.submitted import Submitted, record_submitted_many
from bridge.mt.tables import UNFINISHED_ORDERS
from bridge.notices.queue import NoticeOutcome, claim_notices, record_notices
from bridge.notices.status import NoticeStatus
from bridge.outcomes.steps import STEPS
from bridge.push.delivery_status import PushStatus
from bridge.push.queue import PushRecord, claim_pushes, queue_push, record_pushes
from bridge.smpp.constants import ESME_ROK
from bridge.smpp_outbox.queue import OutboxPdu, answered, mark_sent, queue_pdus, take_due
from bridge.tenants.admin import add_customer, add_user
from bridge.tenants.senders import find_sender
from bridge.values import InboundSms, ReceiptState
from bridge.values import Receipt as ReceiptValue
from tests.conftest import fresh_postgres, shuffle_tables

SMALL, LARGE = 300, 3_000
BOUND = 1.5
SLACK = 2  # rows (PostgreSQL): a plan may change with the statistics
EVERY = timedelta(minutes=5)  # one mail of history every five minutes
ROUND = 50  # history mails written per round (one transaction per step)
FEW = tuple(f"+4917011100{n:02d}" for n in range(5))  # the numbers the user texts again and again
SENDER = "alice@example.com"
WINDOW = 48 * 3600.0  # [dispatch] receipt_window
PERIOD = 1  # the progress handler counts every virtual-machine step: exact, not rounded

_stop = table(StopEntry)
SMPP_ACCOUNT = "app"  # a customer's SMPP client, whose orders ask for receipts
_RECEIPT = OutboxPdu("ACME", 5, 0, "+4917011100", 1, 1, b"id:1 stat:DELIVRD", 4)
PUSH_TARGET = {"url": "https://push.example.com/mo"}


def _velocity(customer_id: int) -> VelocityCheck:
    return VelocityCheck(
        customer_id=customer_id,
        customer="acme",
        window=3600.0,
        numbers=50,
        suffix_digits=3,
        watch_prefixes=("+882",),
        watch_numbers=20,
        direct=2,
    )


def _distinct(n: int) -> str:
    """The n-th distinct number (spread over many ranges, as real traffic is)."""
    return f"+49151{(n * 7919) % 10_000_000:07d}"


def _mail(mail_id: str, user_id: int, at: datetime, recipients: tuple[str, ...]) -> NewMail:
    return NewMail(
        id=mail_id,
        received_at=at,
        envelope_from=SENDER,
        user_id=user_id,
        client_addr="127.0.0.1",
        helo="client",
        message_id=f"<{mail_id}@client>",
        subject="Hi",
        raw=b"Subject: Hi\r\n\r\nHello\r\n",
        dedupe_key=f"key-{mail_id}",
        dedupe_since=at - timedelta(minutes=10),
        orders=tuple(
            NewOrder(
                id=f"{mail_id}.{n}",
                recipient=number,
                rcpt_address=f"{number}@sms.example.com",
                sender_id="ACME",
                text="Hello " * (30 if n == 2 else 1),  # the second order has two parts
                encoding="gsm7",
                parts=2 if n == 2 else 1,
                priority=0,
                expires_at=at + timedelta(days=2),
                policy={"notify": "all"},
            )
            for n, number in enumerate(recipients, 1)
        ),
    )


@dataclass
class Bridge:
    """One user's database and the history written into it so far."""

    engine: Engine
    user_id: int
    customer_id: int
    newest: datetime  # the history ends here (the probes run after it)
    written: int = 0  # history mails written so far
    analyze: bool = False  # statistics after each part of the history

    def intake(self, mail: NewMail) -> IntakeMail:
        conversation = Conversation(orders=2, window=DEFAULT_REPLY_WINDOW)
        return IntakeMail(mail, conversation=conversation, velocity=_velocity(self.customer_id))


def _recipients(n: int) -> tuple[str, ...]:
    """History mail n: to a recurring number, to a new one, or both (two orders)."""
    if n % 3 == 0:
        return (FEW[n % len(FEW)],)
    if n % 3 == 1:
        return (_distinct(n),)
    return (FEW[n % len(FEW)], _distinct(n))


def _older_history(bridge: Bridge, count: int) -> None:
    """`count` more mails of history, older than what is there: each one's whole way
    (commit, claim, submit, receipts, status mails), one round of mails at a time."""
    first = bridge.written
    for start in range(first, first + count, ROUND):
        numbers = range(start, min(start + ROUND, first + count))
        # mail n was received (n + 1) × EVERY before the newest; the round goes oldest first
        times = {n: bridge.newest - (n + 1) * EVERY for n in numbers}
        mails = [
            _mail(f"H{n:06d}", bridge.user_id, times[n], _recipients(n)) for n in reversed(numbers)
        ]
        end = max(times.values())
        with bridge.engine.begin() as conn:
            commit_mails(conn, [bridge.intake(m) for m in mails])
        with bridge.engine.begin() as conn:
            claimed = claim_orders(conn, end, 1_000, 60.0)
            assert len(claimed) == sum(len(m.orders) for m in mails)
            at = {o.id: m.received_at for m in mails for o in m.orders}
            parts = {o.id: o.parts for m in mails for o in m.orders}
            # a few recent orders still wait for their receipt (until after the probes)
            recent = {m.id for m in mails if int(m.id[1:]) < 200 and int(m.id[1:]) % 10 == 5}
            waiting = {o.id for m in mails for o in m.orders if m.id in recent}
            record_submitted_many(
                conn,
                end,
                [
                    Submitted(
                        o.id,
                        "smsc",
                        tuple(f"{o.id}/{p}" for p in range(parts[o.id])),
                        submitted_at=at[o.id],
                        receipt_due=utcnow() + timedelta(days=2) if o.id in waiting else None,
                    )
                    for o in claimed
                ],
                steps=STEPS,
            )
        receipts = [
            (
                ReceiptValue(
                    "smsc",
                    f"{order_id}/{p}",
                    ReceiptState.UNDELIVERABLE if n % 7 == 0 else ReceiptState.DELIVERED,
                ),
                at[order_id] + timedelta(seconds=5),
            )
            for n, order_id in enumerate(sorted(at))
            if order_id not in waiting
            for p in range(parts[order_id])
        ]
        with bridge.engine.begin() as conn:
            insert_receipts(conn, receipts)
        with bridge.engine.begin() as conn:
            apply_receipts(conn, end + timedelta(seconds=5), 1_000, WINDOW, steps=STEPS)
        with bridge.engine.begin() as conn:
            notices = claim_notices(conn, end + timedelta(seconds=6), 1_000, 60.0)
            record_notices(
                conn,
                end + timedelta(seconds=6),
                [NoticeOutcome(n.id, NoticeStatus.SENT) for n in notices],
            )
    with bridge.engine.begin() as conn:  # opt-outs and inbound SMS grow with it
        conn.execute(
            insert(_stop),
            [
                {
                    "customer_id": bridge.customer_id if n % 4 else 0,
                    "msisdn": _distinct(n + 5_000_000),
                    "service": "",
                    "origin": "sms",
                    "created_at": bridge.newest - (n + 1) * EVERY,
                }
                for n in range(first, first + count)
            ],
        )
        for n in range(first, first + count, 10):
            sms = InboundSms("smsc", _recipients(n)[-1], "+4989123456", "thanks", "gsm7")
            inbound_id = insert_inbound(conn, sms, bridge.newest - (n + 1) * EVERY)
            mark_inbound(conn, inbound_id, InboundStatus.NOTIFIED)
    with bridge.engine.begin() as conn:  # an SMPP client's receipts and HTTP pushes, answered
        for n in range(first, first + count):
            sent = bridge.newest - (n + 1) * EVERY
            queue_pdus(conn, SMPP_ACCOUNT, "receipt", f"H{n:06d}.1", (_RECEIPT,), sent)
            if n % 5 == 0:
                queue_push(conn, bridge.customer_id, None, PUSH_TARGET, "{}", "json", sent, 3600.0)
        taken = take_due(conn, SMPP_ACCOUNT, bridge.newest, count, 60.0)
        assert len(taken) == count
        mark_sent(conn, [i.id for i in taken], bridge.newest)
        pushes = claim_pushes(conn, bridge.newest, count, 60.0)
        record_pushes(conn, [PushRecord(w.id, bridge.newest, PushStatus.SENT) for w in pushes])
    bridge.written += count
    if bridge.analyze and bridge.engine.dialect.name == "postgresql":
        shuffle_tables(bridge.engine)
    if bridge.analyze:
        with bridge.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


class Meter:
    """The work of one call: SQLite's virtual-machine steps (a progress handler on the
    driver's connection), or on PostgreSQL the rows its scans read (`pg_stat_xact_user_tables`:
    sequential scans' rows and index scans' row fetches, in this transaction; index-only
    scans off, so that an index scan counts what it reads). `lines`: each statement's share
    (SQLite) or each table's (PostgreSQL), for the failure message, once `started` listens."""

    def __init__(self) -> None:
        self.total = 0
        self.lines: list[list[Any]] = []  # [what, work] in the order they ran

    def tick(self) -> int:
        self.total += 1
        if self.lines:
            self.lines[-1][1] += 1
        return 0

    def started(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if conn.dialect.name == "sqlite":
            self.lines.append([" ".join(statement.split())[:160], 0])

    @contextmanager
    def measure(self, conn: Connection) -> Iterator[None]:
        """Counts the work the block does (from 0)."""
        self.total = 0
        if conn.dialect.name == "postgresql":
            # an index-only scan fetches no rows: it would read an index's history unseen
            conn.exec_driver_sql("SET LOCAL enable_indexonlyscan = off")
            before = _rows_read(conn)
            yield
            after = _rows_read(conn)
            grown = {t: n - before.get(t, 0) for t, n in after.items() if n != before.get(t, 0)}
            self.total = sum(grown.values())
            self.lines += [[f"  {t}", n] for t, n in sorted(grown.items())]
            return
        raw: Any = conn.connection.dbapi_connection
        raw.set_progress_handler(self.tick, PERIOD)
        try:
            yield
        finally:
            raw.set_progress_handler(None, PERIOD)


def _rows_read(conn: Connection) -> dict[str, int]:
    """Rows read by scans of each table in this transaction so far (PostgreSQL)."""
    rows = conn.exec_driver_sql(
        "SELECT relname, seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables"
    )
    return {r[0]: int(r[1]) for r in rows}


Probe = Callable[[Connection], object]


def _probes(bridge: Bridge, tag: str, now: datetime) -> list[tuple[str, Probe]]:
    """The per-mail path of two new mails received at `now` (one to a recurring number, one
    to a new number), each step one call, in the order the bridge runs them."""
    user, customer = bridge.user_id, bridge.customer_id
    fresh = _distinct(9_000_000 + len(tag))
    mails = [
        _mail(f"P{tag}1", user, now, (FEW[0],)),
        _mail(f"P{tag}2", user, now, (fresh, FEW[1])),
    ]
    orders = [o for m in mails for o in m.orders]
    later = now + timedelta(seconds=1)
    claimed: list[Any] = []

    def claim(conn: Connection) -> object:
        claimed[:] = claim_orders(conn, now, 100, 60.0)
        assert {o.id for o in claimed} == {o.id for o in orders}
        return claimed

    def outcomes(conn: Connection) -> object:
        submitted = [
            Outcome(
                o.id,
                OutcomeKind.SUBMITTED,
                "smsc",
                tuple(f"{o.id}/{p}" for p in range(2 if o.id.endswith(".2") else 1)),
                submitted_at=now,
            )
            for o in claimed
        ]
        return record_outcomes(conn, [*submitted, Claim(100, 60.0)], steps=STEPS)

    def receipts(conn: Connection) -> object:
        rows = [
            (ReceiptValue("smsc", f"{o.id}/{p}", ReceiptState.DELIVERED), later)
            for o in claimed
            for p in range(2 if o.id.endswith(".2") else 1)
        ]
        insert_receipts(conn, rows)
        return rows

    def apply(conn: Connection) -> object:
        applied = apply_receipts(conn, later, 500, WINDOW, steps=STEPS)
        assert applied.applied == 4 and len(applied.finished_orders) == 3
        return applied

    def notices(conn: Connection) -> object:
        claimed_notices = claim_notices(conn, later, 100, 60.0)
        assert len(claimed_notices) == 3
        sent = [NoticeOutcome(n.id, NoticeStatus.SENT) for n in claimed_notices]
        record_notices(conn, later, sent)
        return sent

    def inbound(conn: Connection) -> object:
        sms = InboundSms("smsc", FEW[0], "+4989123456", "thanks", "gsm7")
        insert_inbound(conn, sms, now)
        (inbound_id,) = due_inbound(conn, later, 100)
        row = load_inbound(conn, inbound_id)
        assert row is not None
        found = assignments_for(conn, row.source, row.destination, now, None)
        limits = InboundSettings()  # the sender's SMS to the number in the MO limit's window
        since = row.received_at - timedelta(seconds=limits.mo_limit_window)
        assert count_earlier(conn, row, since, limits.mo_limit) < limits.mo_limit
        assert not limited_earlier(conn, row, since)
        mark_inbound(conn, inbound_id, InboundStatus.NOTIFIED)
        return found

    def smpp_receipt(conn: Connection) -> object:
        (item,) = take_due(conn, SMPP_ACCOUNT, later, 100, 60.0)
        assert item.message_key == f"P{tag}1.1"
        return answered(
            conn, [(item, ESME_ROK)], later, retry_delay=60.0, retry_max=600.0, give_up_after=1e5
        )

    def push(conn: Connection) -> object:
        (work,) = claim_pushes(conn, later, 100, 60.0)
        return record_pushes(conn, [PushRecord(work.id, later, PushStatus.SENT)])

    return [
        ("RCPT: find_sender", lambda c: find_sender(c, SENDER)),
        (
            "RCPT: rate per minute",
            lambda c: count_orders_since(c, user, now - timedelta(seconds=60), 101),
        ),
        (
            "RCPT: rate per day",
            lambda c: count_orders_since(c, user, now - timedelta(days=1), 10_001),
        ),
        ("RCPT: is_stopped (recurring)", lambda c: is_stopped(c, customer, FEW[0], ("ACME",))),
        ("RCPT: is_stopped (new)", lambda c: is_stopped(c, customer, fresh, ("ACME",))),
        ("backpressure: queue_depth", queue_depth),
        ("intake: commit_mails", lambda c: commit_mails(c, [bridge.intake(m) for m in mails])),
        ("dispatch: claim_orders", claim),
        ("dispatch: others_pending", lambda c: others_pending(c, "x", FEW[0], "ACME")),
        (
            "dispatch: others_pending (other)",  # none from this sender: the whole range
            lambda c: others_pending(c, "x", FEW[0], "+4989123456"),
        ),
        ("dispatch: record_outcomes", outcomes),
        ("receipts: insert_receipts", receipts),
        ("receipts: part_exists", lambda c: part_exists(c, "smsc", f"P{tag}2.1/0")),
        ("receipts: apply_receipts", apply),
        ("receipts: finish_unconfirmed", lambda c: finish_unconfirmed(c, later, 200, steps=STEPS)),
        ("notices: claim + record", notices),
        ("inbound: one SMS routed", inbound),
        (
            "SMPP client: receipt queued",
            lambda c: queue_pdus(c, SMPP_ACCOUNT, "receipt", f"P{tag}1.1", (_RECEIPT,), now),
        ),
        ("SMPP client: receipt taken + answered", smpp_receipt),
        (
            "push: queued",
            lambda c: queue_push(c, customer, None, PUSH_TARGET, "{}", "json", now, 3600.0),
        ),
        ("push: claimed + recorded", push),
    ]


def _run(bridge: Bridge, tag: str, now: datetime, meter: Meter) -> dict[str, int]:
    """Each probe in its own transaction; its work."""
    counts: dict[str, int] = {}
    for name, probe in _probes(bridge, tag, now):
        meter.lines.append([f"-- {name}", 0])
        with bridge.engine.begin() as conn, meter.measure(conn):
            probe(conn)
        counts[name] = meter.total
    return counts


def _generic_plans(dbapi_connection: Any, record: object) -> None:
    """Every statement prepared at its first run and planned once for any parameters (as
    PostgreSQL may plan a statement psycopg has prepared, from its fifth run on)."""
    dbapi_connection.prepare_threshold = 0
    dbapi_connection.execute("SET plan_cache_mode = force_generic_plan")
    dbapi_connection.commit()


@pytest.fixture(
    params=[
        "sqlite",
        "sqlite-analyzed",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("postgresql-generic-plans", marks=pytest.mark.postgres),
    ]
)
def bridge(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bridge]:
    """SQLite as the bridge runs it (no statistics), SQLite after ANALYZE, and PostgreSQL
    (ANALYZEd after each part of the history, as autovacuum would), with the plans it
    makes for the values given and with generic ones."""
    if request.param.startswith("postgresql"):
        url = fresh_postgres(request.getfixturevalue("postgres_server"))
    else:
        url = f"sqlite:///{tmp_path / 'bridge.db'}"
    engine = open_engine(url)
    if request.param == "postgresql-generic-plans":
        event.listen(engine, "connect", _generic_plans)
    upgrade(engine)
    with engine.begin() as conn:
        customer_id = add_customer(conn, "acme", {"default_country": "DE"})
        user_id = add_user(conn, SENDER, "acme", settings={"notify": "all"})
    analyze = request.param != "sqlite"
    yield Bridge(engine, user_id, customer_id, utcnow() - timedelta(minutes=10), analyze=analyze)
    engine.dispose()


def test_the_per_mail_path_does_the_same_work_with_ten_times_the_history(bridge: Bridge) -> None:
    _older_history(bridge, SMALL)
    # each run a few minutes after the history and the run before: no minute holds both
    small = _run(bridge, "a", bridge.newest + timedelta(minutes=3), Meter())
    _older_history(bridge, LARGE - SMALL)
    meter = Meter()  # each statement's work too: what grew, if anything did
    event.listen(bridge.engine, "before_cursor_execute", meter.started)
    large = _run(bridge, "b", bridge.newest + timedelta(minutes=6), meter)
    event.remove(bridge.engine, "before_cursor_execute", meter.started)
    table_ = "\n".join(
        f"{name:32} {small[name]:>9} {large[name]:>9} {large[name] / max(small[name], 1):6.2f}"
        for name in small
    )
    grown = [name for name in small if large[name] > BOUND * small[name] + SLACK]
    detail = "\n".join(f"{work:>9}  {what}" for what, work in meter.lines)
    print(f"\n{'':32} {SMALL:>9} {LARGE:>9}  ratio\n{table_}\n{detail}")
    assert not grown, f"work grows with history: {grown}\n{table_}\n{detail}"


def test_the_unfinished_orders_are_the_statuses_not_final() -> None:
    """The partial index of unfinished orders (`others_pending`) names every status that
    is not final, and no other."""
    named = set(UNFINISHED_ORDERS.partition("IN (")[2].rstrip(")").replace("'", "").split(", "))
    assert named == {str(s) for s in OrderStatus} - FINAL_ORDER_STATUSES
