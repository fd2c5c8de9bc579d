"""STOP and START against the store: one confirmation per change of state, not per message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from bridge.db.core import table
from bridge.db.store import Store, run_sync
from bridge.inbound.actions_store import is_stopped
from bridge.inbound.admin import apply_numbers
from bridge.inbound.config import parse_numbers
from bridge.inbound.service import InboundService
from bridge.inbound.settings import InboundSettings
from bridge.inbound.store import insert_inbound
from bridge.inbound.tables import Inbound
from bridge.mt.tables import Order
from bridge.notices.customer_templates import Templates
from bridge.notices.render import DEFAULT_TEMPLATES
from bridge.push.settings import PushSettings
from bridge.tenants.admin import add_customer
from bridge.values import InboundSms

PHONE = "+491701234567"
NUMBER = "+4915550000002"
NUMBERS = f"""
[[customer]]
name = "acme"
postmaster = "postmaster@acme.example"

[[number]]
number = "{NUMBER}"
customer = "acme"
actions = [{{type = "sms2mail"}}]
"""


async def test_a_repeated_stop_or_start_is_confirmed_once(engine: Engine, store: Store) -> None:
    run_sync(engine, add_customer, "acme", {})
    run_sync(engine, apply_numbers, parse_numbers(NUMBERS))
    settings = InboundSettings(confirmation_interval=1.0)  # the STOPs/STARTs 1 s apart
    service = InboundService(
        settings, PushSettings(), store, Templates(DEFAULT_TEMPLATES), "eu.rsms.net"
    )
    t0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    words = ["STOP", "stop", " Stop. ", "START", "START", "STOP"]
    for i, word in enumerate(words):
        sms = InboundSms("smsc", source=PHONE, destination=NUMBER, text=word, encoding="gsm7")
        inbound_id = await store.call(insert_inbound, sms, t0 + timedelta(seconds=i))
        await store.call(service.handle, inbound_id, t0 + timedelta(seconds=i))
    with engine.connect() as conn:
        texts = [o.text for o in conn.execute(select(table(Order)).order_by("created_at"))]
        inbound = table(Inbound)
        statuses = [r.status for r in conn.execute(select(inbound).order_by(inbound.c.id))]
        stopped = is_stopped(conn, 1, PHONE, (NUMBER,))
    assert texts == [
        settings.stop_confirmation,
        settings.start_confirmation,
        settings.stop_confirmation,
    ]
    # The repeats are taken care of, not lost; a START from someone who has not opted out
    # is an ordinary answer and goes to a person.
    assert statuses == ["handled"] * 4 + ["notified", "handled"]
    assert stopped
