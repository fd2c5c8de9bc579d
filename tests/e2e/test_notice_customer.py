"""Status and SMS2Mail mails as a customer sees them: its templates, its time zone, our name.

The whole bridge with the sandbox SMSC: a mail becomes an SMS, the status mail uses the
customer's own subject template and shows times in the customer's zone; the phone
answers twice, the user answers by mail in between, and the SMS2Mail subject keeps one
prefix.
"""

from __future__ import annotations

import re
from pathlib import Path

import aiosmtplib
from sqlalchemy import update

from bridge.db import engine as db
from bridge.db.core import table
from bridge.db.store import run_sync
from bridge.sandbox.smsc import send_mo
from bridge.tenants.admin import DEMO_CUSTOMER, DEMO_NUMBER, ensure_demo
from bridge.tenants.tables import Customer
from tests.conftest import make_settings
from tests.helpers import maildir_messages, make_mail, running_bridge, wait_for

PHONE = "+491701234567"
BERLIN = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T \(Europe/Berlin\)")


def _prepare(tmp_path: Path) -> Path:
    """The demo customer in Berlin time, with its own status subject."""
    engine = db.open_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    db.upgrade(engine)
    run_sync(engine, ensure_demo)
    with engine.begin() as conn:
        conn.execute(
            update(table(Customer))
            .where(table(Customer).c.name == DEMO_CUSTOMER)
            .values(settings={"default_country": "DE", "sender_id": DEMO_NUMBER,
                              "timezone": "Europe/Berlin"})
        )  # fmt: skip
    engine.dispose()
    root = tmp_path / "customer-templates"
    (root / DEMO_CUSTOMER).mkdir(parents=True)
    (root / DEMO_CUSTOMER / "status.subject").write_text(
        "Demo status: {{ status }} to {{ recipient }} at {{ final_at }}\n"
    )
    return root


async def _send(ep: object, subject: str, message_id: str) -> None:
    host, port = ep.smtp  # type: ignore[attr-defined]
    to = f"{PHONE}@eu.rsms.net"
    mail = make_mail(subject=subject, to=to, message_id=message_id)
    async with aiosmtplib.SMTP(hostname=host, port=port) as smtp:
        await smtp.sendmail("demo@example.com", [to], mail)


async def test_status_and_sms2mail_as_the_customer_sees_them(tmp_path: Path) -> None:
    root = _prepare(tmp_path)
    settings = make_settings(tmp_path)
    settings = settings.model_copy(
        update={
            "inbound": settings.inbound.model_copy(update={"customer_templates": root}),
            "mailer": settings.mailer.model_copy(update={"from_name": "Acme Messaging"}),
        }
    )
    maildir = settings.mailer.maildir
    async with running_bridge(settings) as (_, ep):
        await _send(ep, "Meeting", "<m1@client.example>")
        [status] = await wait_for(lambda: maildir_messages(maildir), within=20)
        subject = str(status["Subject"])
        assert subject.startswith(f"Demo status: delivered to {PHONE} at "), subject
        assert BERLIN.search(subject), subject
        text = status.get_body(("plain",)).get_content()
        assert len(BERLIN.findall(text)) == 2, text  # accepted and finished
        html = status.get_body(("html",)).get_content()
        assert "Acme Messaging" in html and "SMS Bridge" not in html
        assert status["From"].addresses[0].display_name == "Acme Messaging"

        def sms2mail() -> list[object]:
            return [m for m in maildir_messages(maildir) if m["Reply-To"]]

        assert ep.sandbox is not None
        await send_mo(*ep.sandbox, PHONE, None, "See you", settings.sandbox.inbox)
        [first] = await wait_for(sms2mail, within=20)
        assert first["Subject"] == f"SMS from {PHONE}: Re: Meeting"
        assert BERLIN.search(first.get_body(("plain",)).get_content())

        # The user answers by mail, as a mail client writes it; the phone answers again.
        await _send(ep, f"Re: {first['Subject']}", "<m2@client.example>")
        await wait_for(lambda: len(maildir_messages(maildir)) >= 3, within=20)  # its status
        await send_mo(*ep.sandbox, PHONE, None, "OK", settings.sandbox.inbox)
        answers = await wait_for(lambda: sms2mail() if len(sms2mail()) == 2 else None, within=20)
        assert [a["Subject"] for a in answers] == [f"SMS from {PHONE}: Re: Meeting"] * 2


async def test_relay_refusing_the_status_mail_recipient_fails_the_notice(tmp_path: Path) -> None:
    """A relay's 550 5.1.1 for the status mail's recipient: the notice fails at once."""
    import sqlite3

    from tests.peers.smtp_relay import smtp_relay

    reply = "550 5.1.1 <demo@example.com>: Recipient address rejected: User unknown"
    async with smtp_relay(replies={"RCPT": reply}, fqdn_helo=True) as (relay, port):
        settings = make_settings(tmp_path)
        mailer = type(settings.mailer).model_validate(
            settings.mailer.model_dump()
            | {"mode": "smtp", "relay_port": port, "tls": "none", "ehlo_name": "gw.example"}
        )
        settings = settings.model_copy(update={"mailer": mailer})
        async with running_bridge(settings) as (_, ep):
            await _send(ep, "Meeting", "<m1@client.example>")

            def notices() -> list[tuple[str, str]]:
                with sqlite3.connect(tmp_path / "bridge.db") as conn:
                    return conn.execute("SELECT status, error FROM notice").fetchall()

            [(_, error)] = await wait_for(
                lambda: [n for n in notices() if n[0] == "failed"], within=60
            )
    assert "550 5.1.1" in error and "User unknown" in error
    assert [m.helo for m in relay.mails] == ["gw.example"]
