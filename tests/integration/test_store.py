"""The store on a real database (SQLite and a throwaway PostgreSQL): queues move as designed."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from psycopg import pq
from sqlalchemy import Connection, Engine, Row, select, text

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.engine import open_engine
from bridge.db.store import Store, run_sync
from bridge.errors import StorageUnavailable
from bridge.inbound.service import InboundService
from bridge.inbound.settings import InboundSettings
from bridge.inbound.store import insert_inbound, record_conversation
from bridge.inbound.tables import Inbound
from bridge.intake.commit import Conversation, IntakeMail, accept
from bridge.mt import orders as order_sql
from bridge.mt.mails import NewMail, NewOrder
from bridge.mt.receipts import apply_receipts, insert_receipt
from bridge.mt.tables import Order, Part, Receipt
from bridge.notices.customer_templates import Templates
from bridge.notices.queue import claim_notices
from bridge.notices.render import DEFAULT_TEMPLATES
from bridge.notices.tables import Notice
from bridge.outcomes.steps import STEPS
from bridge.push.settings import PushSettings
from bridge.tenants.admin import add_customer, add_user
from bridge.tenants.senders import find_sender
from bridge.values import InboundSms, ReceiptState
from bridge.values import Receipt as ReceiptValue


def _seed(engine: Engine, notify: str = "all") -> int:
    run_sync(engine, add_customer, "acme", {"default_country": "DE"})
    return run_sync(engine, add_user, "Alice@Example.com", "acme", settings={"notify": notify})


def _mail(user_id: int, mail_id: str = "M1", recipients: int = 1, parts: int = 1) -> NewMail:
    now = utcnow()
    return NewMail(
        id=mail_id,
        received_at=now,
        envelope_from="alice@example.com",
        user_id=user_id,
        client_addr="127.0.0.1",
        helo="client",
        message_id=f"<{mail_id}@client>",
        subject="Hi",
        raw=b"Subject: Hi\r\n\r\nHello\r\n",
        orders=tuple(
            NewOrder(
                id=f"{mail_id}.{n}",
                recipient=f"+4917012345{n:02d}",
                rcpt_address=f"+4917012345{n:02d}@eu.rsms.net",
                sender_id="ACME",
                text="Hello",
                encoding="gsm7",
                parts=parts,
                priority=0,
                expires_at=now + timedelta(days=2),
                policy={"notify": "all"},
            )
            for n in range(1, recipients + 1)
        ),
    )


def _rows(engine: Engine, model: type, **where: object) -> list[Row[Any]]:
    core = table(model)
    query = select(core)
    for key, value in where.items():
        query = query.where(core.c[key] == value)
    with engine.connect() as conn:
        return list(conn.execute(query))


async def test_sender_lookup_is_case_insensitive(engine: Engine, store: Store) -> None:
    user_id = _seed(engine)
    sender = await store.call(find_sender, "ALICE@example.COM")
    assert sender is not None and sender.user_id == user_id and sender.enabled
    assert sender.user_settings == {"notify": "all"}
    assert await store.call(find_sender, "bob@example.com") is None


async def test_group_commit_writes_every_mail_and_order(engine: Engine, store: Store) -> None:
    import asyncio

    user_id = _seed(engine)
    await asyncio.gather(
        *(accept(store, IntakeMail(_mail(user_id, f"M{i}", recipients=2))) for i in range(20))
    )
    assert len(_rows(engine, Order)) == 40
    assert store.batches < 20  # mails queued during a commit went into the next one together


async def test_a_failing_mail_does_not_fail_its_batch_neighbours(
    engine: Engine, store: Store
) -> None:
    import asyncio

    import pytest

    from bridge.errors import StorageUnavailable

    user_id = _seed(engine)
    await accept(store, IntakeMail(_mail(user_id, "DUP")))
    results = await asyncio.gather(
        accept(store, IntakeMail(_mail(user_id, "DUP"))),  # primary key collision
        accept(store, IntakeMail(_mail(user_id, "OK1"))),
        accept(store, IntakeMail(_mail(user_id, "OK2"))),
        return_exceptions=True,
    )
    assert isinstance(results[0], StorageUnavailable)
    assert cast("list[object]", results[1:]) == ["OK1", "OK2"]  # gather gives a list
    assert {r.mail_id for r in _rows(engine, Order)} == {"DUP", "OK1", "OK2"}
    with pytest.raises(StorageUnavailable):
        await accept(store, IntakeMail(_mail(user_id, "DUP")))


async def test_claim_takes_a_lease_and_submitted_receipts_finish_the_order(
    engine: Engine, store: Store
) -> None:
    user_id = _seed(engine)
    await accept(store, IntakeMail(_mail(user_id, parts=2)))
    now = utcnow()
    claimed = await store.call(order_sql.claim_orders, now, 10, 60.0)
    assert [o.id for o in claimed] == ["M1.1"] and claimed[0].attempts == 1
    assert await store.call(order_sql.claim_orders, now, 10, 60.0) == []  # leased
    # A receipt for part 2 arrives before submit_sm_resp was recorded: it waits.
    await store.call(insert_receipt, ReceiptValue("smsc", "id-2", ReceiptState.DELIVERED), now)
    assert (await store.call(apply_receipts, now, 100, 3600.0, steps=STEPS)).applied == 0
    await store.call(order_sql.record_submitted, "M1.1", now, "smsc", ("id-1", "id-2"), steps=STEPS)
    result = await store.call(apply_receipts, now, 100, 3600.0, steps=STEPS)
    assert result.applied == 1 and result.finished_orders == ()
    assert _rows(engine, Order)[0].status == "submitted"  # part 1 not yet delivered
    await store.call(insert_receipt, ReceiptValue("smsc", "id-1", ReceiptState.DELIVERED), now)
    result = await store.call(apply_receipts, now, 100, 3600.0, steps=STEPS)
    assert result.finished_orders == ("M1.1",)
    assert _rows(engine, Order)[0].status == "delivered"
    notices = await store.call(claim_notices, utcnow(), 10, 60.0)
    assert [(n.kind, n.recipient, n.context["status"]) for n in notices] == [
        ("status", "alice@example.com", "delivered")
    ]
    assert notices[0].context["in_reply_to"] == "<M1@client>"


async def test_status_never_regresses_and_duplicates_are_harmless(
    engine: Engine, store: Store
) -> None:
    user_id = _seed(engine)
    await accept(store, IntakeMail(_mail(user_id)))
    now = utcnow()
    await store.call(order_sql.record_submitted, "M1.1", now, "smsc", ("a1",), steps=STEPS)
    for state in (ReceiptState.UNDELIVERABLE, ReceiptState.DELIVERED, ReceiptState.ENROUTE):
        await store.call(insert_receipt, ReceiptValue("smsc", "a1", state), now)
    await store.call(apply_receipts, now, 100, 3600.0, steps=STEPS)
    assert _rows(engine, Order)[0].status == "undeliverable"
    assert _rows(engine, Part)[0].state == "undeliverable"
    assert all(r.status == "applied" for r in _rows(engine, Receipt))
    assert len(_rows(engine, Notice)) == 1  # one notice, not three


async def test_unmatched_receipt_becomes_orphan_after_ttl(engine: Engine, store: Store) -> None:
    _seed(engine)
    now = utcnow()
    await store.call(insert_receipt, ReceiptValue("smsc", "nobody", ReceiptState.DELIVERED), now)
    later = now + timedelta(seconds=10)
    assert (await store.call(apply_receipts, later, 100, 5.0, steps=STEPS)).orphaned == 1
    assert _rows(engine, Receipt)[0].status == "orphan"


async def test_unmatched_receipts_do_not_starve_newer_matched_ones(
    engine: Engine, store: Store
) -> None:
    user_id = _seed(engine)
    await accept(store, IntakeMail(_mail(user_id)))
    now = utcnow()
    await store.call(order_sql.record_submitted, "M1.1", now, "smsc", ("m1",), steps=STEPS)
    for i in range(3):  # older than the matched one, and more than one batch
        await store.call(
            insert_receipt, ReceiptValue("smsc", f"early-{i}", ReceiptState.DELIVERED), now
        )
    await store.call(insert_receipt, ReceiptValue("smsc", "m1", ReceiptState.DELIVERED), now)
    result = await store.call(apply_receipts, now, 2, 3600.0, steps=STEPS)
    assert (result.applied, result.orphaned, result.finished_orders) == (1, 0, ("M1.1",))
    assert [r.status for r in _rows(engine, Receipt)] == ["new", "new", "new", "applied"]
    later = now + timedelta(seconds=10)
    assert (
        await store.call(apply_receipts, later, 2, 5.0, steps=STEPS)
    ).orphaned == 2  # a batch at a time
    assert (await store.call(apply_receipts, later, 2, 5.0, steps=STEPS)).orphaned == 1


async def test_deferred_final_and_held_orders(engine: Engine, store: Store) -> None:
    user_id = _seed(engine, notify="failures")
    await accept(store, IntakeMail(_mail(user_id, recipients=3)))
    now = utcnow()
    await store.call(
        order_sql.record_deferred, "M1.1", now, now + timedelta(seconds=30), "throttled"
    )
    await store.call(
        order_sql.record_final, "M1.2", now, "failed", "smsc: invalid destination", steps=STEPS
    )
    await store.call(order_sql.record_held, "M1.3", now, "Traceback...\nRuntimeError: boom")
    status = {r.id: (r.status, r.error) for r in _rows(engine, Order)}
    assert status["M1.1"] == ("deferred", "throttled")
    assert status["M1.2"] == ("failed", "smsc: invalid destination")
    assert status["M1.3"][0] == "held" and "RuntimeError: boom" in status["M1.3"][1]
    assert await store.call(order_sql.claim_orders, now, 10, 60.0) == []  # deferred is not yet due
    due = await store.call(order_sql.claim_orders, now + timedelta(seconds=31), 10, 60.0)
    assert [o.id for o in due] == ["M1.1"]
    history = await store.call(order_sql.order_history, "M1.1")
    assert [event for _, event, _ in history] == ["queued", "deferred"]
    assert await store.call(order_sql.release_held, "M1.3", now)
    assert {r.id: r.status for r in _rows(engine, Order)}["M1.3"] == "queued"


async def test_inbound_goes_to_the_user_who_last_texted_the_number(
    engine: Engine, store: Store
) -> None:
    user_id = _seed(engine)
    await accept(store, IntakeMail(_mail(user_id)))
    now = utcnow()
    await store.call(order_sql.record_submitted, "M1.1", now, "smsc", ("id-1",), steps=STEPS)
    sms = InboundSms(
        "smsc", source="+491701234501", destination="ACME", text="Yes", encoding="gsm7"
    )
    stranger = InboundSms(
        "smsc", source="+491709999999", destination="ACME", text="?", encoding="gsm7"
    )
    await store.call(insert_inbound, sms, now)
    await store.call(insert_inbound, stranger, now)
    service = InboundService(
        InboundSettings(), PushSettings(), store, Templates(DEFAULT_TEMPLATES), "eu.rsms.net"
    )
    assert await service.step() == 2
    statuses = [r.status for r in _rows(engine, Inbound)]
    assert statuses == ["notified", "unroutable"]
    notices = await store.call(claim_notices, utcnow(), 10, 60.0)
    assert len(notices) == 1
    ctx = notices[0].context
    assert notices[0].kind == "sms2mail" and notices[0].recipient == "alice@example.com"
    assert ctx["reply_to"] == "+491701234501@eu.rsms.net" and ctx["in_reply_to"] == "<M1@client>"


async def test_claim_takes_express_first_and_reads_only_the_open_index(
    engine: Engine, store: Store
) -> None:
    from sqlalchemy import text, update

    user_id = _seed(engine)
    await accept(store, IntakeMail(_mail(user_id, recipients=3)))
    with engine.begin() as conn:
        conn.execute(update(table(Order)).where(table(Order).c.id == "M1.3").values(priority=1))
    claimed = await store.call(order_sql.claim_orders, utcnow(), 2, 60.0)
    assert [o.id for o in claimed] == ["M1.3", "M1.1"]
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            plan = " ".join(
                str(r[3])
                for r in conn.execute(
                    text(
                        'EXPLAIN QUERY PLAN SELECT id FROM "order" WHERE "order".status IN '
                        "('queued', 'deferred') AND priority = 0 AND next_attempt_at <= '9999' "
                        "ORDER BY next_attempt_at LIMIT 20"
                    )
                )
            )
        assert "ix_order_open" in plan and "TEMP B-TREE" not in plan


async def test_a_bug_in_one_grouped_item_fails_only_its_caller(store: Store) -> None:
    """An unexpected exception must neither stall the group commit nor fail the others."""
    import asyncio

    import pytest

    def batch(conn: object, items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky item")
        return [i * 2 for i in items]

    results = await asyncio.wait_for(
        asyncio.gather(*(store.grouped(batch, i) for i in (1, 13, 3)), return_exceptions=True),
        timeout=10,
    )
    assert results[0] == 2 and results[2] == 6
    assert isinstance(results[1], ValueError)
    with pytest.raises(ValueError):
        await asyncio.wait_for(store.grouped(batch, 13), timeout=10)
    assert await asyncio.wait_for(store.grouped(batch, 5), timeout=10) == 10


async def test_the_group_commits_waits_are_summed_per_caller(store: Store) -> None:
    """`Store.waits`: every caller of a group commit, failed ones too, with its wait from
    queued to committed (what the flow control reads: `bridge/intake/pacing.py`)."""

    def slow(conn: object, items: list[int]) -> list[int]:
        time.sleep(0.05)  # the database thread busy (a lock, the disk)
        if 13 in items:
            raise ValueError("unlucky item")
        return items

    assert store.waits() == (0.0, 0)
    results = await asyncio.gather(
        *(store.grouped(slow, i) for i in (1, 2, 13)), return_exceptions=True
    )
    waited, callers = store.waits()
    assert callers == 3 and results[:2] == [1, 2]
    assert waited >= 3 * 0.05


@pytest.mark.parametrize(("window", "sender"), [(3600.0, "ACME"), (86_400.0, "+4915712345678")])
async def test_a_reply_keeps_the_conversations_number_within_the_reply_window(
    engine: Engine, store: Store, window: float, sender: str
) -> None:
    """The conversation (an SMS2Mail mail two hours ago) counts within `[inbound]
    reply_window` only: with one hour the order keeps its own sender, with a day the
    conversation's number."""
    user_id = _seed(engine)
    two_hours_ago = utcnow() - timedelta(hours=2)
    run_sync(
        engine,
        record_conversation,
        "alice@example.com",
        "+491701234501",
        "+4915712345678",
        two_hours_ago,
    )
    await accept(store, IntakeMail(_mail(user_id), conversation=Conversation(1, window)))
    assert [r.sender_id for r in _rows(engine, Order)] == [sender]


async def test_a_group_commit_reads_every_mails_conversations_in_one_query(
    engine: Engine, store: Store
) -> None:
    """Four mails committed together (two users; recipients with a conversation, with
    none, with one only the other user had, with one older than its mail's window):
    each order gets what a read of its own would give, the newest conversation per
    user and number, and the reply assignments are read once for all of them."""
    from sqlalchemy import event

    alice = _seed(engine)
    bob = run_sync(engine, add_user, "bob@example.com", "acme")
    now = utcnow()
    talks = [  # (address, texter, our number, hours ago)
        ("alice@example.com", "+491701234501", "+4915700000001", 30),
        ("alice@example.com", "+491701234501", "+4915700000002", 3),  # newer: this one
        ("bob@example.com", "+491701234502", "+4915700000003", 1),  # bob's, not alice's
        ("alice@example.com", "+491701234503", "+4915700000004", 5),  # beyond 1 h window
        ("bob@example.com", "+491701234503", "+4915700000005", 2),
    ]
    for address, texter, number, hours in talks:
        run_sync(engine, record_conversation, address, texter, number, now - timedelta(hours=hours))

    def mail(user_id: int, mail_id: str, texters: tuple[str, ...]) -> NewMail:
        m = _mail(user_id, mail_id, recipients=len(texters))
        orders = tuple(
            replace(o, recipient=t, rcpt_address=f"{t}@eu.rsms.net")
            for o, t in zip(m.orders, texters, strict=True)
        )
        return replace(m, orders=orders)

    day, hour = Conversation(2, 86_400.0), Conversation(1, 3600.0)
    mails = [
        IntakeMail(mail(alice, "A1", ("+491701234501", "+491701234502")), conversation=day),
        IntakeMail(mail(bob, "B1", ("+491701234502", "+491701234503")), conversation=day),
        IntakeMail(mail(alice, "A2", ("+491701234503",)), conversation=hour),
        IntakeMail(mail(bob, "B2", ("+491701234503", "+491701234501")), conversation=hour),
    ]
    reads: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "reply_assignment" in statement and statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        await asyncio.gather(*(accept(store, m) for m in mails))
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    senders = {r.id: r.sender_id for r in _rows(engine, Order)}
    assert senders == {
        "A1.1": "+4915700000002",  # the newest of alice's two with +…501
        "A1.2": "ACME",  # only bob texts +…502
        "B1.1": "+4915700000003",
        "B1.2": "+4915700000005",
        "A2.1": "ACME",  # alice's +…503 conversation is 5 h old, the window 1 h
        "B2.1": "ACME",  # bob's +…503 one is 2 h old
        "B2.2": "ACME",  # beyond the mail's own orders with a conversation (1 of 2)
    }
    assert len(reads) == 1, reads


def test_a_row_claimed_by_another_process_meanwhile_is_not_claimed_twice(
    engine: Engine, database_url: str
) -> None:
    """Two engines on one database (two processes of one bridge): the second claims the
    order while the first's claim is under way — on SQLite between the first's select
    and its lease update, on PostgreSQL (where the select and the lease are one
    statement) after that statement, its transaction still open; only one gets it, once."""
    import threading

    from sqlalchemy import event

    from bridge.db.engine import open_engine

    user_id = _seed(engine)
    run_sync(engine, _accept_sync, _mail(user_id))
    other = open_engine(database_url)
    now = utcnow()
    won: list[list[str]] = []
    racing: list[threading.Thread] = []

    def claim_other() -> None:
        won.append([o.id for o in run_sync(other, order_sql.claim_orders, now, 10, 60.0)])

    postgres = engine.dialect.name == "postgresql"
    when = "after_cursor_execute" if postgres else "before_cursor_execute"

    def claiming(statement: str) -> bool:  # PostgreSQL: the claim; SQLite: its lease update
        if postgres:
            return "SKIP LOCKED" in statement
        return statement.lstrip().upper().startswith("UPDATE")

    def race(conn: object, cursor: object, statement: str, *args: object) -> None:
        if claiming(statement) and not racing:
            racing.append(threading.Thread(target=claim_other))
            racing[0].start()
            racing[0].join(0.3)  # PostgreSQL: done; SQLite: waiting for the write lock

    event.listen(engine, when, race)
    try:
        mine = [o.id for o in run_sync(engine, order_sql.claim_orders, now, 10, 60.0)]
        racing[0].join(10)
    finally:
        event.remove(engine, when, race)
        other.dispose()
    # SQLite: the first transaction holds the write lock from its BEGIN IMMEDIATE, so the
    # other's claim waits and then finds the order leased. PostgreSQL: the first claim
    # locked it, the other's SKIP LOCKED passed it by.
    assert won == [[]]
    assert mine == ["M1.1"]
    assert _rows(engine, Order)[0].attempts == 1  # counted once


def _accept_sync(conn: object, mail: NewMail) -> None:
    from bridge.mt.mails import insert_mails

    insert_mails(conn, [mail])  # type: ignore[arg-type]


def _two_clock_reads(conn: Connection) -> tuple[object, object, bool]:
    """The server's clock read twice, 20 ms apart, and whether the server has a transaction
    open after them."""
    first = conn.execute(text("SELECT now()")).scalar_one()
    time.sleep(0.02)
    second = conn.execute(text("SELECT now()")).scalar_one()
    raw: Any = conn.connection.dbapi_connection
    return first, second, raw.info.transaction_status != pq.TransactionStatus.IDLE


@pytest.mark.postgres
async def test_a_read_on_postgresql_runs_each_statement_on_its_own(postgres_server: str) -> None:
    """`Store.read` on PostgreSQL opens no transaction (no BEGIN, no COMMIT: two round
    trips fewer per RCPT lookup): `now()`, which is the transaction's start inside one,
    moves between its statements. A write through `call` still is one transaction."""
    store = Store(open_engine(postgres_server))
    try:
        first, second, open_ = await store.read(_two_clock_reads)
        assert second != first and not open_
        first, second, open_ = await store.call(_two_clock_reads)
        assert second == first and open_
    finally:
        await store.close()


def _one(conn: Connection) -> int:
    return int(conn.execute(text("SELECT 1")).scalar_one())


def _broken(conn: Connection) -> int:
    return int(conn.execute(text("SELEC 1")).scalar_one())


async def test_the_sqlite_writer_keeps_its_connection_and_takes_a_new_one_after_a_fault(
    tmp_path: Path,
) -> None:
    """SQLite's one database thread runs its transactions on one connection (no pool
    checkout and return per transaction); a database error drops it, and the next
    transaction runs on a fresh one."""
    from sqlalchemy import event

    engine = open_engine(f"sqlite:///{tmp_path / 'keep.db'}")
    checkouts: list[object] = []
    event.listen(engine, "checkout", lambda *a: checkouts.append(a[0]))
    store = Store(engine)
    try:
        assert [await store.call(_one) for _ in range(5)] == [1] * 5
        assert len(checkouts) == 1
        with pytest.raises(StorageUnavailable):
            await store.call(_broken)
        assert await store.call(_one) == 1
        assert await store.call(_one) == 1
        assert len(checkouts) == 2
    finally:
        await store.close()
