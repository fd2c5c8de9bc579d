"""MO → SMS2Mail → reply by mail → SMS, racing users, and STOP → 550, through the sandbox SMSC."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from bridge.app import Bridge, Endpoints
from bridge.db.store import run_sync
from bridge.sandbox.smsc import read_inbox, send_mo
from bridge.settings import Settings
from bridge.tenants.admin import add_user
from tests.conftest import make_settings
from tests.helpers import maildir_messages, make_mail, running_bridge, wait_for

PHONE = "+491701234567"
NUMBER = "+4915550000001"  # the demo customer's sender number


async def _mail(ep: Endpoints, raw: bytes, sender: str = "demo@example.com") -> None:
    async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
        await smtp.sendmail(sender, [f"{PHONE}@eu.rsms.net"], raw)


async def _phone_says(settings: Settings, ep: Endpoints, text: str) -> None:
    assert ep.sandbox is not None
    await send_mo(ep.sandbox[0], ep.sandbox[1], PHONE, None, text, settings.sandbox.inbox)


def _sms2mail(settings: Settings) -> list[EmailMessage]:
    return [m for m in maildir_messages(settings.mailer.maildir) if m["Reply-To"]]


async def test_mo_to_mail_threaded_then_reply_by_mail_reaches_the_phone(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running_bridge(settings) as (_, ep):
        await _mail(ep, make_mail(body="Can we meet tomorrow?"))
        [sms] = await wait_for(lambda: read_inbox(settings.sandbox.inbox, PHONE))
        assert sms.source == NUMBER
        await _phone_says(settings, ep, "Yes, 3pm works <b>")
        [answer] = await wait_for(lambda: _sms2mail(settings))
        assert answer["Reply-To"] == f"{PHONE}@eu.rsms.net"
        assert answer["In-Reply-To"] == "<original-1@client.example>"
        assert answer["References"] == "<original-1@client.example>"
        assert PHONE in str(answer["From"]) and PHONE in str(answer["Subject"])
        html = answer.get_body(("html",)).get_content()
        assert "Yes, 3pm works &lt;b&gt;" in html  # the SMS text is escaped
        # The user answers with their mail client: new text on top, the quote below.
        reply = EmailMessage()
        reply["From"] = "demo@example.com"
        reply["To"] = answer["Reply-To"]
        reply["Subject"] = "Re: " + str(answer["Subject"])
        reply["In-Reply-To"] = answer["Message-ID"]
        reply["Message-ID"] = "<reply-1@client.example>"
        reply.set_content(
            "Great, see you then.\n\nOn Monday, SMS Bridge wrote:\n> Yes, 3pm works\n> --\n"
        )
        await _mail(ep, reply.as_bytes())
        inbox = await wait_for(
            lambda: [m for m in read_inbox(settings.sandbox.inbox, PHONE) if "Great" in m.text]
        )
        assert inbox[0].text == "Great, see you then."
        assert inbox[0].source == NUMBER  # the same number as the conversation


async def test_stop_confirms_and_then_refuses_mail_at_rcpt(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    quick = settings.inbound.model_copy(update={"confirmation_interval": 0.001})
    settings = settings.model_copy(update={"inbound": quick})  # STOP and START both confirmed
    async with running_bridge(settings) as (_, ep):
        await _mail(ep, make_mail())
        await wait_for(lambda: read_inbox(settings.sandbox.inbox, PHONE))
        await _phone_says(settings, ep, "please stop calling me")  # a sentence: no opt-out
        await wait_for(lambda: _sms2mail(settings))
        await _phone_says(settings, ep, " Stop. ")
        confirmations = await wait_for(
            lambda: [m for m in read_inbox(settings.sandbox.inbox, PHONE) if "opted out" in m.text]
        )
        assert confirmations[0].source == NUMBER
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await _mail(ep, make_mail(body="are you there?"))
        [(code, message)] = [(r.code, r.message) for r in refused.value.recipients]
        assert code == 550 and "5.7.1" in message and "opted out" in message
        await _phone_says(settings, ep, "START")
        await wait_for(
            lambda: [m for m in read_inbox(settings.sandbox.inbox, PHONE) if "opted in" in m.text]
        )
        await _mail(ep, make_mail(body="welcome back"))  # accepted again


async def test_two_users_race_for_one_number_newest_wins(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None
        run_sync(bridge.store.engine, add_user, "bob@example.com", "demo", display_name="Bob")
        await _mail(ep, make_mail(message_id="<alice@x>"))
        await wait_for(lambda: read_inbox(settings.sandbox.inbox, PHONE))
        await _mail(
            ep, make_mail(sender="bob@example.com", message_id="<bob@x>"), "bob@example.com"
        )
        await wait_for(lambda: len(read_inbox(settings.sandbox.inbox, PHONE)) == 2)
        await wait_for(lambda: _submitted(Bridge, tmp_path) >= 2)
        await _phone_says(settings, ep, "Who is this?")
        [answer] = await wait_for(lambda: _sms2mail(settings))
        assert answer["To"].addresses[0].addr_spec == "bob@example.com"
        assert answer["In-Reply-To"] == "<bob@x>"
        text = answer.get_body(("plain",)).get_content()
        assert "demo@example.com also texted" in text and "newest" in text


def _submitted(_: object, tmp_path: Path) -> int:
    import sqlite3

    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        return int(conn.execute("SELECT count(*) FROM reply_assignment").fetchone()[0])
