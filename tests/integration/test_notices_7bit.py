"""Notices through a relay that offers neither 8BITMIME nor SMTPUTF8.

The relay is a real aiosmtpd server with `decode_data=True`: it does not advertise
8BITMIME and answers "500 Error: strict ASCII mode" to a DATA with an octet over 127, as
a strict relay refuses (a lenient one would pass the octets on, mangled). Every notice
is 7-bit (RFC 6152: no 8-bit octets without BODY=8BITMIME to a relay that offered it):
status mails with non-ASCII text, and DSNs that return an SMTPUTF8 mail's UTF-8 headers
(RET=HDRS, as message/global-headers) or an 8BITMIME mail (RET=FULL, as message/global;
RFC 6533), quoted-printable. A notice to an address that would need SMTPUTF8 fails at
once, saying so, with its ids in the log line.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email import policy
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope
from sqlalchemy import Engine, select

from bridge import logcontext
from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.store import Store, run_sync
from bridge.notices.mailer import Mailer
from bridge.notices.queue import queue_notice
from bridge.notices.render import DEFAULT_TEMPLATES, Renderer
from bridge.notices.settings import MailerSettings
from bridge.notices.smtp_client import DeliveryFailed, SmtpClient
from bridge.notices.tables import Notice
from bridge.notices.transport_table import Hop, TlsLevel, TransportTable
from tests.helpers import DSN_CONTEXT, STATUS_CONTEXT

# An SMTPUTF8 client's mail: UTF-8 in its headers, an 8bit body.
ORIGINAL = (
    "From: Jürgen Müller <juergen@example.com>\r\n"
    "To: +491701234567@eu.rsms.net\r\n"
    "Subject: Grüße aus Köln\r\n"
    "Message-ID: <m1@client.example>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Bitte um Rückruf, Übergabe um 15 Uhr.\r\n"
).encode()
HEADER_BLOCK = ORIGINAL[: ORIGINAL.index(b"\r\n\r\n") + 2]  # what RET=HDRS keeps


class StrictSink:
    """Records each MAIL and each mail accepted (`decode_data=True`: text, ASCII)."""

    def __init__(self) -> None:
        self.mails: list[str] = []
        self.mail_commands = 0

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.mail_commands += 1
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        assert isinstance(envelope.content, str)
        self.mails.append(envelope.content)
        return "250 OK"


@asynccontextmanager
async def strict_sink() -> AsyncIterator[tuple[StrictSink, int]]:
    """A real aiosmtpd server on 127.0.0.1 that offers no 8BITMIME and no SMTPUTF8."""
    handler = StrictSink()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(handler, hostname="strict.test", decode_data=True),
        host="127.0.0.1",
        port=0,
    )
    try:
        yield handler, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def _mailer(store: Store, port: int, tmp_path: Path) -> Mailer:
    settings = MailerSettings.model_validate(
        {
            "mode": "smtp",
            "relay_port": port,
            "starttls": "off",
            "from_address": "bridge@example.com",
            "maildir": tmp_path / "md",
        }
    )
    renderer = Renderer(
        DEFAULT_TEMPLATES,
        from_address="bridge@example.com",
        from_name="SMS Bridge",
        hostname="bridge.test",
    )
    return Mailer(settings, store, renderer)


def _notices(engine: Engine) -> list[tuple[str, str, int]]:
    notice_t = table(Notice)
    with engine.connect() as conn:
        rows = conn.execute(select(notice_t).order_by(notice_t.c.id)).all()
    return [(r.status, r.error, r.attempts) for r in rows]


def _raw_parts(mail: str) -> list[tuple[Message, bytes]]:
    """The top-level parts of a multipart mail as written: each part's header fields and
    its body still encoded (the stdlib parser would read a message/global-headers body
    as a message of its own)."""
    mail = mail.replace("\r\n", "\n")
    boundary = email.message_from_string(mail, policy=policy.compat32).get_boundary()
    assert boundary is not None
    parts = mail.split(f"\n--{boundary}")[1:-1]
    found = []
    for part in parts:
        head, _, body = part.removeprefix("\n").partition("\n\n")
        found.append((email.message_from_string(head + "\n\n"), body.encode("ascii")))
    return found


def _decoded(part: Message, body: bytes) -> bytes:
    cte = part.get("Content-Transfer-Encoding", "7bit").lower()
    if cte == "quoted-printable":
        return binascii.a2b_qp(body)
    if cte == "base64":
        return base64.b64decode(body)
    return body


async def test_a_status_mail_with_non_ascii_text_goes_7bit(
    engine: Engine, store: Store, tmp_path: Path
) -> None:
    """The SMS text and the customer's name are German: the text and HTML parts are
    quoted-printable, and the relay takes the mail (it refused 8bit parts with 500)."""
    context = {**STATUS_CONTEXT, "text": "Grüße aus Köln: Übergabe um 15 Uhr", "to_name": "Jürgen"}
    run_sync(engine, queue_notice, "status", "alice@example.com", context, utcnow(), customer="")
    async with strict_sink() as (sink, port):
        assert await _mailer(store, port, tmp_path).step() == 1
    assert _notices(engine) == [("sent", "", 1)]
    [mail] = sink.mails
    msg = email.message_from_string(mail, policy=policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    assert {plain["Content-Transfer-Encoding"], html["Content-Transfer-Encoding"]} == {
        "quoted-printable"
    }
    assert "Grüße aus Köln: Übergabe um 15 Uhr" in plain.get_content()
    assert "Grüße aus Köln: Übergabe um 15 Uhr" in html.get_content()


@pytest.mark.parametrize("ret", ["HDRS", "FULL"])
async def test_a_dsn_returning_an_smtputf8_mail_goes_7bit(
    engine: Engine, store: Store, tmp_path: Path, ret: str
) -> None:
    """A DSN about an SMTPUTF8 mail with an 8bit body returns its UTF-8 header block
    (RET=HDRS) as message/global-headers, the whole mail (RET=FULL) as message/global
    (RFC 6533: text/rfc822-headers and message/rfc822 must not carry them, and
    message/rfc822 must not be encoded), quoted-printable: the relay takes the DSN, and a
    reader gets the original's octets back."""
    returned = ORIGINAL if ret == "FULL" else HEADER_BLOCK
    context = {**DSN_CONTEXT, "ret": ret, "original": base64.b64encode(returned).decode()}
    run_sync(engine, queue_notice, "dsn", "alice@example.com", context, utcnow(), customer="")
    async with strict_sink() as (sink, port):
        assert await _mailer(store, port, tmp_path).step() == 1
    assert _notices(engine) == [("sent", "", 1)]
    [mail] = sink.mails
    _, status, (part, body) = _raw_parts(mail)
    assert status[0].get_content_type() == "message/delivery-status"
    expected = "message/global" if ret == "FULL" else "message/global-headers"
    assert part.get_content_type() == expected
    assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert part.get_param("charset") is None  # RFC 6533: never a charset parameter
    assert _decoded(part, body) == returned.replace(b"\r\n", b"\n")


@pytest.mark.parametrize("ret", ["HDRS", "FULL"])
async def test_a_dsn_returning_an_ascii_mail_keeps_its_rfc822_types(
    engine: Engine, store: Store, tmp_path: Path, ret: str
) -> None:
    """An ASCII original is returned as before (text/rfc822-headers, message/rfc822),
    labelled 7bit, and the relay takes it."""
    ascii_mail = b"Subject: alarm\r\nMessage-ID: <m1@client.example>\r\n\r\nPump P-101\r\n"
    returned = ascii_mail if ret == "FULL" else ascii_mail[: ascii_mail.index(b"\r\n\r\n") + 2]
    context = {**DSN_CONTEXT, "ret": ret, "original": base64.b64encode(returned).decode()}
    run_sync(engine, queue_notice, "dsn", "alice@example.com", context, utcnow(), customer="")
    async with strict_sink() as (sink, port):
        assert await _mailer(store, port, tmp_path).step() == 1
    assert _notices(engine) == [("sent", "", 1)]
    [mail] = sink.mails
    *_, (part, body) = _raw_parts(mail)
    expected = "message/rfc822" if ret == "FULL" else "text/rfc822-headers"
    assert part.get_content_type() == expected
    assert part["Content-Transfer-Encoding"] == "7bit"
    assert _decoded(part, body) == returned.replace(b"\r\n", b"\n")


async def test_8bit_octets_are_never_sent_to_a_relay_without_8bitmime() -> None:
    """Whatever hands the client 8-bit octets, it does not send them to a relay that did
    not offer 8BITMIME (RFC 6152): the mail fails before MAIL, saying why, instead of
    being refused after DATA by a strict relay or passed on mangled by a lenient one."""
    data = b"Subject: x\nContent-Transfer-Encoding: 8bit\n\nGr\xc3\xbc\xc3\x9fe\n"
    async with strict_sink() as (sink, port):
        table = TransportTable([], relay=Hop("127.0.0.1", port), tls=TlsLevel.NONE)
        client = SmtpClient(table, ehlo_name="bridge.test", timeout=5.0)
        try:
            with pytest.raises(DeliveryFailed, match="8BITMIME") as caught:
                await client.send(data, "bridge@example.com", "alice@example.com")
            await client.send(b"Subject: x\n\nASCII\n", "bridge@example.com", "alice@example.com")
        finally:
            await client.close()
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert sink.mail_commands == 1 and len(sink.mails) == 1  # only the ASCII mail


@pytest.mark.parametrize("kind", ["status", "dsn"])
async def test_a_notice_to_an_address_that_needs_smtputf8_fails_once_and_says_so(
    engine: Engine, store: Store, tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A local part that is not ASCII needs SMTPUTF8, which the bridge does not send: the
    notice fails at its first attempt (no retries), its error says so, and the log line
    carries the notice's and the order's ids."""
    context = DSN_CONTEXT if kind == "dsn" else STATUS_CONTEXT
    run_sync(engine, queue_notice, kind, "jürgen@example.com", context, utcnow(), customer="")
    caplog.set_level(logging.ERROR, logger="bridge.notices.mailer")
    caplog.handler.addFilter(logcontext.ContextFilter())
    async with strict_sink() as (sink, port):
        mailer = _mailer(store, port, tmp_path)
        assert await mailer.step() == 1
        assert await mailer.step() == 0  # nothing left to retry
    [(status, error, attempts)] = _notices(engine)
    assert (status, attempts) == ("failed", 1)
    assert "jürgen@example.com" in error and "SMTPUTF8" in error
    assert sink.mail_commands == 0
    [record] = [r for r in caplog.records if "failed" in r.getMessage()]
    assert "SMTPUTF8" in record.getMessage()
    assert record.__dict__.get("order_id") == context["order_id"]
    assert record.__dict__.get("notice_id")
