"""Notices built from hostile outside values, end to end: they go out, with checked headers.

An SMS from the alphanumeric sender `<x@evil.example>` becomes a mail whose headers name
no address outside the bridge's domains (and the recipient); CR/LF in an SMS sender, a
directory display name and the DSN parameters ENVID/ORCPT no longer hold the notice.
"""

from __future__ import annotations

import re
import sqlite3
from email.message import EmailMessage
from pathlib import Path
from typing import cast

from bridge.sandbox.smsc import send_mo
from bridge.settings import Settings
from tests.conftest import make_settings
from tests.helpers import maildir_messages, running_bridge, wait_for
from tests.smtp_probe import RawSmtp

NUMBER = "+4915550000001"  # the demo customer's number
POSTMASTER = "ops@corp.example"
_ADDRESS = re.compile(r"[^\s<>\"'@,;:()]+@[^\s<>\"'@,;:()]+")


def _settings(tmp_path: Path) -> Settings:
    s = make_settings(tmp_path)
    return s.model_copy(update={"inbound": s.inbound.model_copy(update={"postmaster": POSTMASTER})})


def _header_block(msg: EmailMessage) -> str:
    return msg.as_bytes().split(b"\n\n", 1)[0].decode("ascii")


def _to(settings: Settings, address: str) -> list[EmailMessage]:
    return [m for m in maildir_messages(settings.mailer.maildir) if address in str(m["To"])]


def _statuses(tmp_path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        return [(str(k), str(s)) for k, s in conn.execute("SELECT kind, status FROM notice")]


async def test_sms_from_an_alphanumeric_address_like_sender(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    own = {
        *settings.smtp.domains,
        settings.smtp.hostname,
        settings.mailer.from_address.split("@")[1],
    }
    async with running_bridge(settings) as (_, ep):
        assert ep.sandbox is not None
        inbox = settings.sandbox.inbox
        await send_mo(*ep.sandbox, "<x@evil.example>", NUMBER, "click me", inbox)
        await send_mo(*ep.sandbox, "AB\r\nCc: y@ev.il", NUMBER, "and me", inbox)
        mails = await wait_for(lambda: (m := _to(settings, POSTMASTER)) and len(m) == 2 and m)
    for mail in mails:
        block = _header_block(mail)
        foreign = [
            a for a in _ADDRESS.findall(block) if a != POSTMASTER and a.split("@")[1] not in own
        ]
        assert foreign == [], block
        assert mail["Reply-To"] is None and mail["Cc"] is None
        text = mail.get_body(("plain",)).get_content()
        assert "no reply address" in text
    assert {s for _, s in _statuses(tmp_path)} == {"sent"}


async def test_cr_lf_in_a_display_name_and_dsn_parameters_still_send_the_notices(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    async with running_bridge(settings) as (_, ep):
        with sqlite3.connect(tmp_path / "bridge.db") as conn:  # as a directory could write it
            conn.execute(
                "UPDATE user SET display_name = ? WHERE address = 'demo@example.com'",
                ("Demo\r\nBcc: x@evil.example",),
            )
        c = await RawSmtp.connect(*ep.smtp)
        await c.read_reply()
        await c.command("EHLO client.example")
        reply = await c.command("MAIL FROM:<demo@example.com> ENVID=E1+0D+0ABcc:+20x@evil.example")
        assert reply.startswith("250"), reply
        reply = await c.command(
            "RCPT TO:<+491701234567@eu.rsms.net> NOTIFY=SUCCESS ORCPT=rfc822;a+0D+0Ab@eu.rsms.net"
        )
        assert reply.startswith("250"), reply
        await c.command("DATA")
        await c.send(b"Subject: hi\r\nMessage-ID: <m1@client.example>\r\n\r\nHello\r\n.\r\n")
        assert (await c.read_reply()).startswith("250")
        await c.close()
        await wait_for(
            lambda: sorted(_statuses(tmp_path)) == [("dsn", "sent"), ("status", "sent")],
            within=15,
        )
    mails = _to(settings, "demo@example.com")
    assert len(mails) == 2 and all(m["Bcc"] is None for m in mails)
    [status] = [m for m in mails if m.get_content_type() == "multipart/alternative"]
    assert status["To"].addresses[0].display_name == "Demo Bcc: xevil.example"
    [dsn] = [m for m in mails if m.get_content_type() == "multipart/report"]
    fields: dict[str, str] = {}
    for part in dsn.walk():
        if part.get_content_type() == "message/delivery-status":
            for block in cast("list[EmailMessage]", part.get_payload()):
                fields.update(block.items())
    assert fields["Original-Envelope-Id"] == "E1+0D+0ABcc:+20x@evil.example"
    assert fields["Original-Recipient"] == "rfc822;a+0D+0Ab@eu.rsms.net"
