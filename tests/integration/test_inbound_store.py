"""Inbound step against the store: fallback and postmaster, auto-reply rate limit, lists export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from bridge.db.core import table as table_of
from bridge.db.store import Store, run_sync
from bridge.inbound.actions_store import add_stop, is_stopped, list_stops, remove_stop
from bridge.inbound.admin import apply_numbers
from bridge.inbound.config import parse_numbers
from bridge.inbound.service import HANDLE_BATCH, InboundService
from bridge.inbound.settings import InboundSettings
from bridge.inbound.store import insert_inbound
from bridge.inbound.tables import Inbound
from bridge.keyword_lists.export import export_due
from bridge.mt.tables import Order
from bridge.notices.customer_templates import Templates
from bridge.notices.render import DEFAULT_TEMPLATES
from bridge.notices.tables import Notice
from bridge.push.settings import PushSettings
from bridge.tenants.admin import add_customer
from bridge.values import InboundSms

NUMBERS = """
[[customer]]
name = "acme"
postmaster = "postmaster@acme.example"

[[customer.list]]
name = "news"
export_to = ["marketing@acme.example"]
export_at = "06:00"
export_mode = "full"

[[number]]
number = "+4915550000002"
customer = "acme"
actions = [{type = "sms2mail"}]

[[number.keyword]]
keyword = "INFO"
actions = [{type = "autoreply", text = "Open 9-17, {{ source }}"}]

[[number.keyword]]
keyword = "NEWS"
aliases = ["NEWSLETTER"]
actions = [{type = "list", list = "news"}]

[[number]]
number = "+4915550000003"
customer = "acme"
fallback = ["desk@acme.example"]
"""


def _rows(engine: Engine, table: type) -> list:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return list(conn.execute(select(table_of(table))))


async def _deliver(store: Store, service: InboundService, to: str, text: str, at: datetime) -> str:
    sms = InboundSms("smsc", source="+491701234567", destination=to, text=text, encoding="gsm7")
    inbound_id = await store.call(insert_inbound, sms, at)
    await store.call(service.handle, inbound_id, at)
    [row] = [r for r in _rows(store.engine, Inbound) if r.id == inbound_id]
    return str(row.status)


async def test_fallback_autoreply_limit_and_list_export(engine: Engine, store: Store) -> None:
    run_sync(engine, add_customer, "acme", {})
    report = run_sync(engine, apply_numbers, parse_numbers(NUMBERS))
    assert len(report.added) == 4
    again = run_sync(engine, apply_numbers, parse_numbers(NUMBERS))
    assert not (again.added or again.changed or again.removed)  # idempotent
    service = InboundService(
        InboundSettings(), PushSettings(), store, Templates(DEFAULT_TEMPLATES), "eu.rsms.net"
    )
    t0 = datetime(2026, 1, 1, 5, 0, tzinfo=UTC)
    # Nobody texted this sender: the customer's postmaster, or the number's fallback.
    assert await _deliver(store, service, "+4915550000002", "hello?", t0) == "notified"
    assert await _deliver(store, service, "+4915550000003", "hello?", t0) == "notified"
    notices = [(n.kind, n.recipient) for n in _rows(engine, Notice)]
    assert notices == [
        ("sms2mail", "postmaster@acme.example"),
        ("sms2mail", "desk@acme.example"),
    ]
    # Auto-reply at most once per interval per sender; the limited one still reaches a person.
    assert await _deliver(store, service, "+4915550000002", "info", t0) == "handled"
    later = t0 + timedelta(minutes=1)
    assert await _deliver(store, service, "+4915550000002", "Info?", later) == "notified"
    replies = [o for o in _rows(engine, Order) if o.text.startswith("Open")]
    assert [(o.sender_id, o.recipient, o.text) for o in replies] == [
        ("+4915550000002", "+491701234567", "Open 9-17, +491701234567")
    ]
    assert await _deliver(store, service, "+4915550000002", "INFO", t0 + timedelta(minutes=11))
    assert len([o for o in _rows(engine, Order) if o.text.startswith("Open")]) == 2
    # Lists: join by keyword alias; the daily export mails a CSV once, at its time.
    assert await _deliver(store, service, "+4915550000002", "newsletter", t0) == "handled"
    assert await store.call(export_due, t0) == 1  # never exported: due at once
    assert await store.call(export_due, t0 + timedelta(minutes=5)) == 0
    assert await store.call(export_due, t0 + timedelta(hours=2)) == 0  # nothing changed
    exports = [n for n in _rows(engine, Notice) if n.kind == "list_export"]
    assert exports[0].recipient == "marketing@acme.example"
    assert "+491701234567" in exports[0].context["attachments"][0]["content"]


SHARED = """
[[customer]]
name = "acme"
postmaster = "postmaster@acme.example"

[[customer]]
name = "globex"
postmaster = "postmaster@globex.example"

[[number]]
number = "+4915550000005"
customer = "acme"
sharing = "keyword"
fallback = ["desk@acme.example"]

[[number.keyword]]
keyword = "PIZZA"
actions = [{type = "sms2mail", mode = "static", to = ["orders@acme.example"]}]

[[number]]
number = "+4915550000005"
customer = "globex"
sharing = "dynamic"
fallback = ["desk@globex.example"]
"""


def _service(store: Store, postmaster: str = "") -> InboundService:
    return InboundService(
        InboundSettings(postmaster=postmaster),
        PushSettings(),
        store,
        Templates(DEFAULT_TEMPLATES),
        "eu.rsms.net",
    )


async def test_shared_number_unmatched_goes_to_the_operator_not_the_first_customer(
    engine: Engine, store: Store
) -> None:
    acme = run_sync(engine, add_customer, "acme", {})
    globex = run_sync(engine, add_customer, "globex", {})
    run_sync(engine, apply_numbers, parse_numbers(SHARED))
    t0 = datetime(2026, 1, 1, 5, 0, tzinfo=UTC)
    # No operator mailbox: kept as unroutable and says why, but no customer reads it.
    lonely = _service(store)
    assert await _deliver(store, lonely, "+4915550000005", "is anyone there?", t0) == "unroutable"
    [row] = _rows(engine, Inbound)
    assert "shared number" in row.error and "takes_unmatched" in row.error
    service = _service(store, "ops@bridge.example")
    assert await _deliver(store, service, "+4915550000005", "hello?", t0) == "notified"
    assert await _deliver(store, service, "+4915550000005", "pizza margherita", t0) == "notified"
    notices = [(n.kind, n.recipient) for n in _rows(engine, Notice)]
    assert notices == [("sms2mail", "ops@bridge.example"), ("sms2mail", "orders@acme.example")]
    # Whose STOP is it? Nobody's in particular: the texter opts out of every customer.
    assert await _deliver(store, service, "+4915550000005", "STOP", t0) == "handled"
    with engine.connect() as conn:
        assert is_stopped(conn, acme, "+491701234567", ())
        assert is_stopped(conn, globex, "491701234567", ())


async def test_shared_number_unmatched_goes_to_the_customer_that_takes_it(
    engine: Engine, store: Store
) -> None:
    run_sync(engine, add_customer, "acme", {})
    run_sync(engine, add_customer, "globex", {})
    owned = SHARED.replace('fallback = ["desk@globex.example"]', "takes_unmatched = true")
    run_sync(engine, apply_numbers, parse_numbers(owned))
    t0 = datetime(2026, 1, 1, 5, 0, tzinfo=UTC)
    service = _service(store, "ops@bridge.example")
    assert await _deliver(store, service, "+4915550000005", "hello?", t0) == "notified"
    assert [n.recipient for n in _rows(engine, Notice)] == ["postmaster@globex.example"]


async def test_stop_list_has_one_spelling_per_number(engine: Engine, store: Store) -> None:
    cid = run_sync(engine, add_customer, "acme", {})
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert run_sync(engine, add_stop, cid, "491701234567", "4915550000001", now, "sms")
    assert not run_sync(engine, add_stop, cid, "00491701234567", "+4915550000001", now, "cli")
    assert [(r.msisdn, r.service) for r in run_sync(engine, list_stops)] == [
        ("+491701234567", "+4915550000001")
    ]
    with engine.connect() as conn:
        for spelling in ("+491701234567", "491701234567", "00491701234567"):
            assert is_stopped(conn, cid, spelling, ("4915550000001",))
            assert is_stopped(conn, cid, spelling, ("+4915550000001",))
        assert not is_stopped(conn, cid, "+491701234567", ("ACME",))
    assert run_sync(engine, remove_stop, cid, "491701234567", None) == 1


async def test_a_message_that_fails_in_a_batch_is_held_alone_and_its_writes_undone(
    engine: Engine, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages share a transaction, each in a savepoint: an unexpected error in one (here
    after its mail was queued) undoes that message's writes and holds it with the
    traceback; the others before and after it in the batch are routed and committed."""
    run_sync(engine, add_customer, "acme", {})
    run_sync(engine, apply_numbers, parse_numbers(NUMBERS))
    t0 = datetime(2026, 1, 1, 5, 0, tzinfo=UTC)
    service = _service(store)
    real = service.actions.sms2mail

    def failing(conn: Any, msg: Any, action: Any, now: datetime, fx: Any) -> None:
        real(conn, msg, action, now, fx)  # the mail is queued, then something breaks
        if msg.row.text == "breaks":
            raise RuntimeError("a bug met by one message")

    monkeypatch.setattr(service.actions, "sms2mail", failing)
    texts = ["first", "breaks", "third"]
    for text in texts:
        sms = InboundSms(
            "smsc", source="+491701234567", destination="+4915550000003", text=text, encoding="gsm7"
        )
        await store.call(insert_inbound, sms, t0)
    assert len(texts) <= HANDLE_BATCH  # one transaction for the three
    assert await service.step() == 3
    rows = {r.text: r for r in _rows(engine, Inbound)}
    assert {t: rows[t].status for t in texts} == {
        "first": "notified",
        "breaks": "held",
        "third": "notified",
    }
    assert "RuntimeError: a bug met by one message" in rows["breaks"].error
    mails = [n.context["text"] for n in _rows(engine, Notice)]
    assert sorted(mails) == ["first", "third"]  # the held message's mail was undone
