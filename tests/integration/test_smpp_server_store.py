"""The SMPP server's writes on SQLite and PostgreSQL: parts made into one order (or into a
failed order when the rest does not come), the outbox in order per message, query_sm and
cancel_sm on the account's own orders only."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from bridge.db.core import table
from bridge.db.engine import upgrade
from bridge.db.store import run_sync
from bridge.mt.mails import NewMail, NewOrder
from bridge.mt.tables import Order
from bridge.smpp_outbox.queue import mark_sent, pending_count, queue_mo, take_due
from bridge.smpp_server.orders import (
    Incomplete,
    PartOf,
    Submit,
    Taken,
    cancel_order,
    commit_submits,
    fail_incomplete,
    order_state,
)
from bridge.smpp_server.tables import SmppPart
from bridge.tenants.admin import ensure_demo
from bridge.tenants.senders import find_sender

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SMPP = {
    "system_id": "app1",
    "registered_delivery": 1,
    "source": "ACME",
    "source_ton": 5,
    "source_npi": 0,
    "destination": "491701234567",
    "dest_ton": 1,
    "dest_npi": 1,
}
_order = table(Order)
_part_rows = table(SmppPart)


def _mail(engine: Engine, mail_id: str) -> NewMail:
    sender = run_sync(engine, find_sender, "demo@example.com")
    assert sender is not None
    order = NewOrder(
        id=f"{mail_id}.1",
        recipient="+491701234567",
        rcpt_address="smpp:+491701234567",
        sender_id="ACME",
        text="?",
        encoding="gsm7",
        parts=1,
        priority=0,
        expires_at=NOW + timedelta(days=1),
        policy={"notify": "none", "smpp": SMPP},
    )
    return NewMail(mail_id, NOW, sender.address, sender.user_id, "127.0.0.1", "smpp:app1", "",
                   "", b"", orders=(order,))  # fmt: skip


def _part(seq: int, text: str) -> PartOf:
    return PartOf("app1", "ACME|491701234567|7|2", seq, 2, [text.encode().hex(), 0x40, 0], text,
                  "gsm7")  # fmt: skip


def test_parts_become_one_order_with_the_first_parts_id(engine: Engine) -> None:
    upgrade(engine)
    run_sync(engine, ensure_demo)
    first = run_sync(engine, commit_submits, [Submit(_mail(engine, "M1"), _part(1, "Hello "))])
    again = run_sync(engine, commit_submits, [Submit(_mail(engine, "M2"), _part(1, "Hello "))])
    assert first == again == [Taken("M1.1", False)]  # a part sent twice keeps its id
    assert run_sync(engine, order_state, "M1.1", "app1") is None  # not an order yet
    last = run_sync(engine, commit_submits, [Submit(_mail(engine, "M3"), _part(2, "world"))])
    assert last == [Taken("M1.1", True)]  # the last part writes the order
    with engine.connect() as conn:
        row = conn.execute(select(_order).where(_order.c.id == "M1.1")).one()
    assert (row.text, row.parts, len(row.policy["smpp_parts"])) == ("Hello world", 2, 2)
    state = run_sync(engine, order_state, "M1.1", "app1")
    assert state is not None and state.status == "queued"
    assert run_sync(engine, order_state, "M1.1", "other") is None  # not its order
    assert not run_sync(engine, cancel_order, "M1.1", "other", NOW)
    assert run_sync(engine, cancel_order, "M1.1", "app1", NOW)
    assert not run_sync(engine, cancel_order, "M1.1", "app1", NOW)  # final already
    assert run_sync(engine, pending_count, "app1") == 1  # the cancelled order's receipt


def test_a_message_whose_parts_do_not_all_come_becomes_a_failed_order(engine: Engine) -> None:
    upgrade(engine)
    run_sync(engine, ensure_demo)
    stale = run_sync(engine, commit_submits, [Submit(_mail(engine, "M4"), _part(1, "lost "))])
    assert stale == [Taken("M4.1", False)]
    later = NOW + timedelta(seconds=1)
    assert run_sync(engine, fail_incomplete, NOW, later) == []  # not older than `before` yet
    with engine.begin() as conn:  # a part written before it kept its message (0018)
        conn.execute(_part_rows.insert().values(system_id="app1", part_key="k", seq=2, total=3,
                                           mail_id="OLD", part=[], text="", encoding="gsm7",
                                           created_at=NOW))  # fmt: skip
    done = run_sync(engine, fail_incomplete, later, later)
    assert done == [Incomplete("M4", (1,), 2, True), Incomplete("OLD", (2,), 3, False)]
    with engine.connect() as conn:
        row = conn.execute(select(_order).where(_order.c.id == "M4.1")).one()
        assert conn.execute(select(_part_rows)).all() == []
    assert (row.status, row.text, row.parts) == ("failed", "lost ", 2)
    assert row.error.startswith("incomplete: part(s) 2 of 2 did not come")
    state = run_sync(engine, order_state, "M4.1", "app1")
    assert state is not None and state.final  # query_sm says so
    [receipt] = run_sync(engine, take_due, "app1", later, 10, 30.0)  # registered_delivery 1
    assert receipt.message_key == "M4.1" and b"stat:REJECTD" in receipt.pdu.short_message
    assert receipt.pdu.destination == "ACME" and receipt.pdu.dest_ton == 5


def test_outbox_goes_in_order_per_message(engine: Engine) -> None:
    upgrade(engine)
    text = "x" * 200  # two parts
    run_sync(engine, lambda conn: queue_mo(conn, "app1", "+491701234567", "+4915550000009",
                                           text, 5, NOW))  # fmt: skip
    run_sync(engine, lambda conn: queue_mo(conn, "app1", "+491701234567", "+4915550000009",
                                           "short", 6, NOW))  # fmt: skip
    assert run_sync(engine, pending_count, "app1") == 3
    due = run_sync(engine, take_due, "app1", NOW, 10, 30.0)
    assert [i.message_key for i in due] == ["mo:5", "mo:6"]  # not the second part of mo:5 yet
    assert run_sync(engine, take_due, "app1", NOW, 10, 30.0) == []  # leased
    run_sync(engine, mark_sent, [due[0].id], NOW)
    later = run_sync(engine, take_due, "app1", NOW + timedelta(seconds=31), 10, 30.0)
    assert [i.message_key for i in later] == ["mo:5", "mo:6"]  # part 2, and mo:6 again
    assert later[0].pdu.short_message[:6] == bytes((5, 0, 3, 5, 2, 2))
    assert run_sync(engine, take_due, "other", NOW, 10, 30.0) == []


def test_one_message_to_two_accounts_waits_for_neither(engine: Engine) -> None:
    """An MO whose number has two SMPP actions is queued for two accounts under one
    message key: each account's client gets it, neither waits for the other's answer."""
    upgrade(engine)
    with engine.begin() as conn:
        for account in ("app1", "app2"):
            queue_mo(conn, account, "+491701234567", "+4915550000009", "x" * 200, 7, NOW)
    for account in ("app2", "app1"):
        [item] = run_sync(engine, take_due, account, NOW, 10, 30.0)
        assert (item.system_id, item.message_key) == (account, "mo:7")
        assert item.pdu.short_message[:6] == bytes((5, 0, 3, 7, 2, 1))  # the first part


def test_two_takes_at_once_never_both_get_a_row(engine: Engine) -> None:
    """Two instances sending one account's outbox take at the same moment: the second
    take's select ran while the first one's transaction still held its rows, and its
    update moved their lease again without asking whether they were still due, so both
    instances sent the same deliver_sm (on PostgreSQL). Now the second skips them."""
    upgrade(engine)
    run_sync(engine, lambda conn: queue_mo(conn, "app1", "+491701234567", "+4915550000009",
                                           "once", 7, NOW))  # fmt: skip
    with ThreadPoolExecutor(1) as pool, engine.connect() as conn:
        with conn.begin():
            first = take_due(conn, "app1", NOW, 10, 30.0)
            second = pool.submit(run_sync, engine, take_due, "app1", NOW, 10, 30.0)
            time.sleep(0.5)  # it selects, and waits for this transaction where it must
        assert [i.message_key for i in first] == ["mo:7"]
        assert second.result(timeout=10) == []
