"""MO SMS are limited per sender and number (`[inbound] mo_limit` within `mo_limit_window`):
a phone or a forged SMSC peer flooding one of our numbers is kept as `limited` rows, not
turned into a flood of mails, pushes and SMS; a STOP still opts out, other senders and
other numbers go on as before, and the warning is logged once, not per SMS."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from bridge.db.core import table
from bridge.db.store import Store, run_sync
from bridge.inbound.actions_store import is_stopped
from bridge.inbound.admin import apply_numbers
from bridge.inbound.config import parse_numbers
from bridge.inbound.service import InboundService
from bridge.inbound.settings import InboundSettings
from bridge.inbound.store import insert_inbound, purge_inbound
from bridge.inbound.tables import Inbound
from bridge.metrics import Metrics
from bridge.notices.customer_templates import Templates
from bridge.notices.render import DEFAULT_TEMPLATES
from bridge.notices.tables import Notice
from bridge.push.settings import PushSettings
from bridge.tenants.admin import add_customer
from bridge.values import InboundSms

PHONE = "+491701234567"
OTHER_PHONE = "+491709876543"
NUMBER = "+4915550000002"
OTHER_NUMBER = "+4915550000003"
NUMBERS = f"""
[[customer]]
name = "acme"
postmaster = "postmaster@acme.example"

[[number]]
number = "{NUMBER}"
customer = "acme"
actions = [{{type = "sms2mail"}}]

[[number]]
number = "{OTHER_NUMBER}"
customer = "acme"
actions = [{{type = "sms2mail"}}]
"""
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
WINDOW = 600.0
NOTE = "over [inbound] mo_limit (5 SMS in 600 s): no action run"


class Bridge:
    """The inbound step with `mo_limit = 5` (or `limit`) in 600 s, fed one MO at a time."""

    def __init__(self, engine: Engine, store: Store, limit: int = 5) -> None:
        self.customer_id = run_sync(engine, add_customer, "acme", {})
        run_sync(engine, apply_numbers, parse_numbers(NUMBERS))
        self.engine, self.store = engine, store
        self.metrics = Metrics.unregistered()
        settings = InboundSettings(mo_limit=limit, mo_limit_window=WINDOW)
        self.service = InboundService(
            settings,
            PushSettings(),
            store,
            Templates(DEFAULT_TEMPLATES),
            "eu.rsms.net",
            metrics=self.metrics,
        )

    async def say(
        self, text: str, at: datetime, phone: str = PHONE, number: str = NUMBER
    ) -> tuple[int, str, str]:
        """Feed one MO and handle it at `at`: its id, status and note."""
        sms = InboundSms("smsc", source=phone, destination=number, text=text, encoding="gsm7")
        inbound_id = await self.store.call(insert_inbound, sms, at)
        await self.store.call(self.service.handle, inbound_id, at)
        inbound = table(Inbound)
        with self.engine.connect() as conn:
            row = conn.execute(select(inbound).where(inbound.c.id == inbound_id)).one()
        return inbound_id, str(row.status), str(row.error)

    def mails(self) -> list[int]:
        """The inbound ids the SMS2Mail notices queued so far are for."""
        notice = table(Notice)
        query = select(notice.c.inbound_id).where(notice.c.kind == "sms2mail")
        with self.engine.connect() as conn:
            return sorted(conn.execute(query).scalars())

    def limited(self) -> float:
        found = self.metrics.registry.get_sample_value(
            "mailsms_inbound_actions_total", {"action": "limited"}
        )
        return found or 0.0

    def stopped(self, phone: str = PHONE) -> bool:
        with self.engine.connect() as conn:
            return is_stopped(conn, self.customer_id, phone, (NUMBER,))


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "mo_limit" in r.getMessage()
    ]


async def test_a_flood_past_the_limit_is_kept_without_its_actions(
    engine: Engine, store: Store
) -> None:
    bridge = Bridge(engine, store)
    said = [await bridge.say(f"hello {i}", T0 + timedelta(seconds=i)) for i in range(7)]
    assert [status for _, status, _ in said] == ["notified"] * 5 + ["limited"] * 2
    assert [note for _, _, note in said[5:]] == [NOTE, NOTE]
    assert bridge.mails() == [inbound_id for inbound_id, _, _ in said[:5]]  # none for those two
    assert bridge.limited() == 2


async def test_a_stop_past_the_limit_still_opts_out(engine: Engine, store: Store) -> None:
    bridge = Bridge(engine, store)
    for i in range(6):
        await bridge.say(f"hello {i}", T0 + timedelta(seconds=i))
    assert (await bridge.say("hello", T0 + timedelta(seconds=6)))[1] == "limited"
    _, status, note = await bridge.say("Stop", T0 + timedelta(seconds=7))
    assert status == "handled" and "mo_limit" not in note
    assert bridge.stopped()
    # and a START from the stopped phone opts it in again, limit or not
    assert (await bridge.say("START", T0 + timedelta(seconds=8)))[1] == "handled"
    assert not bridge.stopped()
    assert (await bridge.say("hello", T0 + timedelta(seconds=9)))[1] == "limited"


async def test_other_senders_and_other_numbers_are_not_limited(
    engine: Engine, store: Store
) -> None:
    bridge = Bridge(engine, store)
    for i in range(6):
        await bridge.say(f"hello {i}", T0 + timedelta(seconds=i))
    at = T0 + timedelta(seconds=10)
    assert (await bridge.say("hello", at))[1] == "limited"
    assert (await bridge.say("hello", at, phone=OTHER_PHONE))[1] == "notified"
    assert (await bridge.say("hello", at, number=OTHER_NUMBER))[1] == "notified"
    assert (await bridge.say("hello", at + timedelta(seconds=1)))[1] == "limited"


async def test_after_the_window_a_sender_is_handled_again(engine: Engine, store: Store) -> None:
    bridge = Bridge(engine, store)
    for i in range(7):
        await bridge.say(f"hello {i}", T0 + timedelta(seconds=i))
    # 600 s after the fifth the five handled ones are out of the window; the two limited
    # ones (seconds 5 and 6) count, and two are fewer than five
    at = T0 + timedelta(seconds=WINDOW + 5)
    assert (await bridge.say("again", at))[1] == "notified"
    later = T0 + timedelta(seconds=2 * WINDOW + 10)
    assert [(await bridge.say("later", later + timedelta(seconds=i)))[1] for i in range(6)] == [
        "notified"
    ] * 5 + ["limited"]


async def test_limited_sms_are_purged_with_the_others(engine: Engine, store: Store) -> None:
    bridge = Bridge(engine, store)
    for i in range(7):
        await bridge.say(f"hello {i}", T0 + timedelta(seconds=i))
    cut = T0 + timedelta(days=1)
    with engine.begin() as conn:
        assert purge_inbound(conn, cut, cut, dry_run=False)["inbound"] == 7
    with engine.connect() as conn:
        assert conn.execute(select(table(Inbound))).first() is None


async def test_no_limit_with_mo_limit_0(engine: Engine, store: Store) -> None:
    bridge = Bridge(engine, store, limit=0)
    said = [await bridge.say(f"hello {i}", T0 + timedelta(seconds=i / 10)) for i in range(30)]
    assert {status for _, status, _ in said} == {"notified"}
    assert len(bridge.mails()) == 30 and bridge.limited() == 0


async def test_the_warning_is_logged_once_per_flood_not_per_sms(
    engine: Engine, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bridge.inbound")
    bridge = Bridge(engine, store)
    said = [await bridge.say(f"hello {i}", T0 + timedelta(seconds=i)) for i in range(20)]
    assert [status for _, status, _ in said].count("limited") == 15
    first = said[5][0]
    assert _warnings(caplog) == [
        f"inbound {first} from {PHONE} to {NUMBER}: over [inbound] mo_limit (5 SMS in 600 s "
        "from a sender to a number); its actions and those of the sender's next SMS to the "
        "number are not run until it sends less (kept as limited)"
    ]
    # Still limited 700 s on (the flood's last SMS are in the window): no second line ...
    await bridge.say("more", T0 + timedelta(seconds=WINDOW + 15))
    assert len(_warnings(caplog)) == 1
    # ... nor while the window slides: each of these has exactly five before it in its
    # window again, but limited ones among them.
    for i in range(3):
        _, status, _ = await bridge.say("more", T0 + timedelta(seconds=WINDOW + 16 + i))
        assert status == "limited"
    assert len(_warnings(caplog)) == 1
    # A new flood after a quiet window: one new line, for its first SMS over the limit.
    again = T0 + timedelta(seconds=3 * WINDOW)
    said = [await bridge.say(f"again {i}", again + timedelta(seconds=i)) for i in range(8)]
    assert len(_warnings(caplog)) == 2 and str(said[5][0]) in _warnings(caplog)[1]
    assert bridge.limited() == 15 + 4 + 3
