"""STOP/START confirmations are limited per (our number, texter) like auto-replies: alternating
STOP and START (or forged MOs) change the stop list every time but cannot make the bridge
send one SMS per incoming message."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from bridge.db.core import table
from bridge.db.store import Store, run_sync
from bridge.inbound.actions_store import Answer, answer_allowed, is_stopped
from bridge.inbound.admin import apply_numbers
from bridge.inbound.config import parse_numbers
from bridge.inbound.service import InboundService
from bridge.inbound.settings import InboundSettings
from bridge.inbound.store import insert_inbound
from bridge.inbound.tables import AutoReplyLog, ConfirmationLog, Inbound
from bridge.mt.tables import Order
from bridge.notices.customer_templates import Templates
from bridge.notices.render import DEFAULT_TEMPLATES
from bridge.push.settings import PushSettings
from bridge.tenants.admin import add_customer
from bridge.values import InboundSms

PHONE = "+491701234567"
OTHER_PHONE = "+491709876543"
NUMBER = "+4915550000002"
NUMBERS = f"""
[[customer]]
name = "acme"
postmaster = "postmaster@acme.example"

[[number]]
number = "{NUMBER}"
customer = "acme"
actions = [{{type = "sms2mail"}}]

[[number.keyword]]
keyword = "INFO"
actions = [{{type = "autoreply", text = "Open 9-17"}}]
"""
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def _service(store: Store, settings: InboundSettings) -> InboundService:
    return InboundService(
        settings, PushSettings(), store, Templates(DEFAULT_TEMPLATES), "eu.rsms.net"
    )


async def _say(
    store: Store, service: InboundService, phone: str, text: str, at: datetime
) -> tuple[int, str, str]:
    """Feed one MO and handle it at `at`; its id, status and notes."""
    sms = InboundSms("smsc", source=phone, destination=NUMBER, text=text, encoding="gsm7")
    inbound_id = await store.call(insert_inbound, sms, at)
    await store.call(service.handle, inbound_id, at)
    with store.engine.connect() as conn:
        inbound = table(Inbound)
        row = conn.execute(select(inbound).where(inbound.c.id == inbound_id)).one()
    return inbound_id, str(row.status), str(row.error)


def _sms_to(engine: Engine, phone: str) -> list[str]:
    """The texts of the SMS queued to `phone`, oldest first."""
    orders = table(Order)
    with engine.connect() as conn:
        query = select(orders.c.text).where(orders.c.recipient == phone)
        return list(conn.execute(query.order_by(orders.c.created_at, orders.c.id)).scalars())


def _stopped(engine: Engine, customer_id: int, phone: str) -> bool:
    with engine.connect() as conn:
        return is_stopped(conn, customer_id, phone, (NUMBER,))


async def test_alternating_stop_and_start_is_confirmed_once_per_interval(
    engine: Engine, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    customer_id = run_sync(engine, add_customer, "acme", {})
    run_sync(engine, apply_numbers, parse_numbers(NUMBERS))
    settings = InboundSettings(confirmation_interval=600.0)
    service = _service(store, settings)
    stop_text, start_text = settings.stop_confirmation, settings.start_confirmation
    caplog.set_level(logging.INFO, logger="bridge.inbound")

    # An auto-reply just sent does not hold back the confirmation (each has its own entry).
    assert (await _say(store, service, PHONE, "INFO", T0 - timedelta(seconds=30)))[1] == "handled"
    assert _sms_to(engine, PHONE) == ["Open 9-17"]

    # Ten alternating STOP/START within the interval: every change applied and recorded,
    # one confirmation (the first); each limited one noted on the row and logged with its id.
    for i in range(10):
        word = "STOP" if i % 2 == 0 else "START"
        inbound_id, status, notes = await _say(
            store, service, PHONE, word, T0 + timedelta(seconds=i)
        )
        assert status == "handled"
        assert _stopped(engine, customer_id, PHONE) is (word == "STOP")
        if i == 0:
            assert "rate-limited" not in notes
        else:
            assert notes == f"{word.lower()}: confirmation rate-limited"
            assert any(
                r.levelno == logging.WARNING
                and r.getMessage().startswith(f"inbound {inbound_id}: confirmation to {PHONE}")
                and "rate-limited" in r.getMessage()
                for r in caplog.records
            )
    assert _sms_to(engine, PHONE) == ["Open 9-17", stop_text]

    # Another phone, same number, same minute: its own confirmation.
    await _say(store, service, OTHER_PHONE, "STOP", T0 + timedelta(seconds=20))
    assert _stopped(engine, customer_id, OTHER_PHONE)
    assert _sms_to(engine, OTHER_PHONE) == [stop_text]

    # A confirmation just sent does not hold back an auto-reply either (the last START
    # left PHONE opted in; the auto-reply's own interval has passed).
    later = T0 + timedelta(seconds=settings.autoreply_interval)
    assert (await _say(store, service, PHONE, "info", later))[1] == "handled"
    assert _sms_to(engine, PHONE) == ["Open 9-17", stop_text, "Open 9-17"]

    # Once the interval has passed, the next change is confirmed again.
    after = T0 + timedelta(seconds=settings.confirmation_interval + 1)
    _, status, notes = await _say(store, service, PHONE, "STOP", after)
    assert status == "handled" and "rate-limited" not in notes
    assert _stopped(engine, customer_id, PHONE)
    assert _sms_to(engine, PHONE) == ["Open 9-17", stop_text, "Open 9-17", stop_text]
    _, _, notes = await _say(store, service, PHONE, "START", after + timedelta(seconds=1))
    assert notes == "start: confirmation rate-limited"
    assert not _stopped(engine, customer_id, PHONE)
    assert _sms_to(engine, PHONE) == ["Open 9-17", stop_text, "Open 9-17", stop_text]
    assert start_text not in _sms_to(engine, PHONE)  # six STARTs, none confirmed


def test_an_answer_kind_has_its_own_entry(engine: Engine) -> None:
    """One gate, a table per kind: an auto-reply's entry does not hold a confirmation back,
    nor the other way round."""
    with engine.begin() as conn:
        assert answer_allowed(conn, NUMBER, PHONE, T0, 600.0)
        assert answer_allowed(conn, NUMBER, PHONE, T0, 600.0, Answer.CONFIRMATION)
        assert not answer_allowed(conn, NUMBER, PHONE, T0 + timedelta(seconds=599), 600.0)
        assert not answer_allowed(
            conn, NUMBER, PHONE, T0 + timedelta(seconds=599), 600.0, Answer.CONFIRMATION
        )
        later = T0 + timedelta(seconds=600)
        assert answer_allowed(conn, NUMBER, PHONE, later, 600.0, Answer.AUTOREPLY)
        found = {
            name: [(r.number, r.msisdn) for r in conn.execute(select(table(model)))]
            for name, model in (("autoreply", AutoReplyLog), ("confirmation", ConfirmationLog))
        }
    assert found == {"autoreply": [(NUMBER, PHONE)], "confirmation": [(NUMBER, PHONE)]}


async def test_a_sender_name_gets_no_confirmation(engine: Engine, store: Store) -> None:
    """A STOP from an alphanumeric sender (a name, which no phone answers to) still changes
    the stop list, but no SMS is queued to the name (as no auto-reply is)."""
    customer_id = run_sync(engine, add_customer, "acme", {})
    run_sync(engine, apply_numbers, parse_numbers(NUMBERS))
    service = _service(store, InboundSettings())
    _, status, notes = await _say(store, service, "ACME", "STOP", T0)
    assert status == "handled" and _stopped(engine, customer_id, "ACME")
    assert notes == "stop: the sender cannot receive SMS, no confirmation"
    assert _sms_to(engine, "ACME") == []
    _, _, notes = await _say(store, service, "ACME", "INFO", T0 + timedelta(seconds=1))
    assert "autoreply: the sender cannot receive SMS" in notes
    assert _sms_to(engine, "ACME") == []


def test_two_instances_answering_one_sender_at_once_send_one_answer(engine: Engine) -> None:
    """Two transactions (two bridge instances) ask at the same moment: the second waits for
    the first's entry and finds it, so one answer goes out. (A read, then an insert: on
    PostgreSQL both read no entry, and the second failed on the key after the wait.)"""
    found: dict[str, object] = {}

    def second() -> None:
        try:
            with engine.begin() as conn:
                later = T0 + timedelta(seconds=1)
                found["allowed"] = answer_allowed(
                    conn, NUMBER, PHONE, later, 600.0, Answer.CONFIRMATION
                )
        except Exception as exc:  # the test's answer, not a crash of the thread
            found["error"] = exc

    with engine.connect() as first:
        first.begin()
        assert answer_allowed(first, NUMBER, PHONE, T0, 600.0, Answer.CONFIRMATION)
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()  # waiting for the first transaction
        first.commit()
    thread.join(10)
    assert found == {"allowed": False}
