"""Notices through a real Postfix that offers no 8BITMIME, as a company's relay may be.

The mailer's relay is a throwaway Postfix with `smtpd_discard_ehlo_keywords = 8bitmime`
(it does not advertise 8BITMIME), relaying the sender's domain to a sink that does (so
whatever Postfix passes on arrives unchanged). A status mail with German text and a DSN
that returns the UTF-8 header block of an SMTPUTF8/8BITMIME original (RET=HDRS, as
message/global-headers, quoted-printable; RFC 6533) reach the sink 7-bit and read back
with Python's email parser, and Postfix logs nothing about 8-bit content.

Postfix's smtpd takes 8-bit octets without BODY=8BITMIME even when it did not offer
the extension (no `strict_8bitmime`), and passes them on as they came; so on code that
wrote 8-bit notices the failure shows in the mailbox (8-bit octets, CTE 8bit), not as a
refusal. With the bridge's guard (no 8-bit octets to a relay without 8BITMIME) such a
notice is not sent at all, and nothing arrives.
"""

from __future__ import annotations

import binascii
import email
import os
import re
import smtplib
import subprocess
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import cast

import pytest

from tests.conftest import make_settings
from tests.helpers import running_bridge, smtp_sink, wait_for
from tests.peers.net import free_port
from tests.peers.postfix import NOT_ROOT, Postfix, throwaway_postfix
from tests.smtp_probe import RawSmtp

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason=NOT_ROOT)
DOMAIN = "eu.rsms.net"
GERMAN = "Grüße aus Köln: die Übergabe ist um 15 Uhr an Tor 3, bitte Bescheid geben."
UTF8_SUBJECT = "Störung Pumpe P-101 – Druck zu hoch"


def _without_8bitmime(postfix: Postfix) -> None:
    """Postfix's smtpd stops offering 8BITMIME (and says nothing about it in the log)."""
    etc = str(postfix.root / "etc")
    subprocess.run(
        ["postconf", "-c", etc, "-e", "smtpd_discard_ehlo_keywords = silent-discard, 8bitmime"],
        check=True,
        timeout=30,
    )
    subprocess.run(["postfix", "-c", etc, "reload"], check=True, capture_output=True, timeout=30)

    def offers_no_8bitmime() -> bool:
        with smtplib.SMTP("127.0.0.1", postfix.port, timeout=10) as smtp:
            smtp.ehlo("probe.test")
            return not smtp.has_extn("8bitmime") and smtp.has_extn("dsn")

    deadline = 20
    for _ in range(deadline * 10):
        if offers_no_8bitmime():
            return
        time.sleep(0.1)
    raise AssertionError("Postfix still offers 8BITMIME after the reload")


async def _send_to_bridge(port: int, *, utf8: bool) -> None:
    """A mail from demo@example.com for an SMS: German text in a MIME-encoded mail, or
    (utf8) an SMTPUTF8 + 8BITMIME mail with UTF-8 headers asking for a DSN (RET=HDRS)."""
    c = await RawSmtp.connect("127.0.0.1", port)
    await c.read_reply()
    await c.command("EHLO client.example")
    if utf8:
        mail_args, rcpt_args = " SMTPUTF8 BODY=8BITMIME RET=HDRS ENVID=E1", " NOTIFY=SUCCESS"
        head = (
            f"From: Jürgen Müller <demo@example.com>\r\nSubject: {UTF8_SUBJECT}\r\n"
            "Message-ID: <utf8-1@client.example>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 8bit\r\n'
        )
        data = (head + f"\r\n{GERMAN}\r\n").encode()
    else:
        mail_args, rcpt_args = "", ""
        msg = EmailMessage()
        msg["From"] = "demo@example.com"
        msg["Subject"] = "Übergabe"
        msg["Message-ID"] = "<german-1@client.example>"
        msg.set_content(GERMAN, cte="quoted-printable")
        data = msg.as_bytes(policy=policy.SMTP)
    rcpt = "+491701230007" if utf8 else "+491701230006"
    assert (await c.command(f"MAIL FROM:<demo@example.com>{mail_args}")).startswith("250")
    reply = await c.command(f"RCPT TO:<{rcpt}@{DOMAIN}>{rcpt_args}")
    assert reply.startswith("250"), reply
    assert (await c.command("DATA")).startswith("354")
    await c.send(data + b".\r\n")
    reply = await c.read_reply()
    await c.close()
    assert reply.startswith("250"), reply


def _returned_block(raw: bytes, boundary: str | None) -> str:
    """The header block a DSN returns, decoded from quoted-printable and read as UTF-8
    (the parser reads a message/global-headers body as a message of its own, so the
    part is cut from the bytes as a reader does)."""
    assert boundary is not None
    data = raw.replace(b"\r\n", b"\n")
    part = data.split(b"\n--" + boundary.encode())[3].removeprefix(b"\n")
    head, _, body = part.partition(b"\n\n")
    assert b"Content-Transfer-Encoding: quoted-printable" in head
    return binascii.a2b_qp(body).decode("utf-8")


def _complaints(log: str) -> list[str]:
    """Lines of Postfix's log about 8-bit content, a conversion, or a refusal."""
    pattern = re.compile(r"8.?bit|8BITMIME|downgrad|conver|reject|warning|bounced", re.I)
    return [line for line in log.splitlines() if pattern.search(line)]


async def test_notices_pass_a_postfix_without_8bitmime_intact(tmp_path: Path) -> None:
    postfix_port = free_port()  # the mailer's relay, known before the bridge starts
    async with smtp_sink() as (sink, sink_port):
        settings = make_settings(tmp_path)
        mailer = settings.mailer.model_copy(update={"mode": "smtp", "relay_port": postfix_port})
        async with running_bridge(settings.model_copy(update={"mailer": mailer})) as (_, ep):
            with throwaway_postfix({"example.com": sink_port}, port=postfix_port) as postfix:
                _without_8bitmime(postfix)
                await _send_to_bridge(ep.smtp[1], utf8=False)
                await _send_to_bridge(ep.smtp[1], utf8=True)
                # the status mails of both orders and the DSN
                await wait_for(lambda: len(sink.envelopes) >= 3, 30)
                sent = await wait_for(
                    lambda: re.findall(r"to=<demo@example\.com>.*status=sent", postfix.log()), 30
                )
                assert len(sent) >= 3
                log = postfix.log()
    assert _complaints(log) == [], log[-3000:]
    raws = [cast(bytes, e.content) for e in sink.envelopes]
    for raw in raws:  # 7-bit as written: nothing for a relay to convert
        assert raw.isascii(), raw[:2000]
    messages = [email.message_from_bytes(raw, policy=policy.default) for raw in raws]
    reports = [m for m in messages if m.get_content_type() == "multipart/report"]
    statuses = [m for m in messages if m.get_content_type() != "multipart/report"]
    assert len(reports) == 1 and len(statuses) == 2
    for status in statuses:
        for part in status.walk():
            assert part.get("Content-Transfer-Encoding", "7bit").lower() != "8bit"
    [german] = [m for m in statuses if m["In-Reply-To"] == "<german-1@client.example>"]
    plain = german.get_body(("plain",))
    assert isinstance(plain, EmailMessage)
    assert GERMAN in " ".join(plain.get_content().split())  # the SMS text reads back

    [dsn] = reports
    assert dsn["In-Reply-To"] == "<utf8-1@client.example>"
    kinds = [p.get_content_type() for p in dsn.iter_parts()]
    assert kinds == ["text/plain", "message/delivery-status", "message/global-headers"]
    [raw_dsn] = [r for r in raws if b"multipart/report" in r]
    block = _returned_block(raw_dsn, dsn.get_boundary())
    assert f"Subject: {UTF8_SUBJECT}" in block
    assert "From: Jürgen Müller <demo@example.com>" in block
    assert GERMAN not in block  # RET=HDRS
