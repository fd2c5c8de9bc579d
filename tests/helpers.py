"""Test helpers: a running bridge, an SMTP sink, waiting on conditions with deadlines, rows
of a bridge's database, the faults a bridge logged."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope
from sqlalchemy import Engine, text
from sqlmodel import Session

from bridge.app import Bridge, Endpoints
from bridge.db.engine import open_engine, upgrade
from bridge.settings import Settings
from bridge.tenants.tables import Customer, Profile


def db_rows(database_url: str, sql: str) -> list[Any]:
    """The rows of `sql` on the database at `database_url` (a bridge's, while it runs)."""
    engine = open_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)).all())
    finally:
        engine.dispose()


def our_faults(caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    """The log records of an in-process bridge that tell of a fault of ours: an error, or
    any record with a traceback."""
    for r in caplog.records:
        if r.exc_info or r.levelno >= logging.ERROR:
            yield f"{r.name}: {r.getMessage()}"


def acme_database(tmp_path: Path, *profiles: str) -> Engine:
    """A new SQLite bridge database in `tmp_path` with customer "acme" and `profiles`."""
    engine = open_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    upgrade(engine)
    acme_customer(engine, *profiles)
    return engine


def acme_customer(engine: Engine, *profiles: str) -> None:
    """Customer "acme" (default country DE) with these profiles, as dirsync's tests want it."""
    with Session(engine) as s, s.begin():
        customer = Customer(name="acme", settings={"default_country": "DE"})
        s.add(customer)
        s.flush()
        assert customer.id is not None
        for name in profiles:
            s.add(Profile(customer_id=customer.id, name=name))


async def wait_for(predicate: Callable[[], Any], within: float = 5.0, every: float = 0.02) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within} s: {predicate}")
        await asyncio.sleep(every)


@asynccontextmanager
async def running_bridge(settings: Settings) -> AsyncIterator[tuple[Bridge, Endpoints]]:
    bridge = Bridge(settings)
    endpoints = await bridge.start()
    try:
        yield bridge, endpoints
    finally:
        await bridge.stop(grace=2.0)


# The context of a status notice about a failed order, with text that needs escaping.
STATUS_CONTEXT: dict[str, Any] = {
    "order_id": "ABC.1",
    "mail_id": "ABC",
    "status": "undeliverable",
    "recipient": "+491701234567",
    "sender_id": "ACME",
    "text": "Meeting at 3 <b>sharp</b> & on time",
    "encoding": "gsm7",
    "parts": 1,
    "attempts": 1,
    "error": "the network could not deliver a part",
    "received_at": "2026-11-22 10:00:00 UTC",
    "final_at": "2026-11-22 10:00:05 UTC",
    "subject": "Meeting",
    "in_reply_to": "<orig@client.example>",
    "to_name": "Alice",
    "cost_centre": "4711",
}


# The context of a DSN (RFC 3464) about a failed order.
DSN_CONTEXT: dict[str, Any] = {
    "event": "FAILURE",
    "final_recipient": "+491701234567@eu.rsms.net",
    "msisdn": "+491701234567",
    "diagnostic": "X-SMPP; gone",
    "order_id": "A.1",
    "action": "failed",
    "status": "5.0.0",
    "envid": "E1",
    "orcpt": "rfc822;+491701234567@eu.rsms.net",
    "arrival_date": "Sun, 22 Nov 2026 10:00:00 +0000",
    "last_attempt_date": "Sun, 22 Nov 2026 10:00:05 +0000",
    "in_reply_to": "<m1@client.example>",
    "original": "U3ViamVjdDogeA0KDQo=",  # base64 of b"Subject: x\r\n\r\n"
}


def make_mail(
    to: str = "+491701234567@eu.rsms.net",
    body: str = "Hello from the bridge",
    sender: str = "demo@example.com",
    subject: str = "test",
    message_id: str = "<original-1@client.example>",
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg.set_content(body)
    return msg.as_bytes(policy=email.policy.SMTP)


def maildir_messages(root: Path) -> list[email.message.EmailMessage]:
    new = root / "new"
    if not new.is_dir():
        return []
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted(new.iterdir())
    ]


class SinkHandler:
    """An aiosmtpd handler that records every mail; `reply` can make it refuse."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.reply = "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        if self.reply.startswith("250"):
            self.envelopes.append(envelope)
        return self.reply

    def messages(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(e.content, policy=email.policy.default)  # type: ignore[arg-type]
            for e in self.envelopes
        ]


@asynccontextmanager
async def smtp_sink() -> AsyncIterator[tuple[SinkHandler, int]]:
    """A real aiosmtpd server on 127.0.0.1, port 0, in the test's own loop."""
    handler = SinkHandler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.test"), host="127.0.0.1", port=0
    )
    try:
        yield handler, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def outlook_mail() -> bytes:
    """Short text (with a line that is a lone dot and one of two dots), then the HTML part
    Outlook adds: a style sheet of ~1,400 lines, a quarter of them starting with a dot
    (which the client must double and the server take off). LF line ends, as a file: the
    clients that send it (msmtp, smtplib, aiosmtplib) write CRLF."""
    rules = "".join(
        f'.MsoRule{n}\n\t{{mso-style-priority:{n}; font-family:"Calibri",sans-serif;}}\n'
        f"p.MsoNormal{n}, li.MsoNormal{n}\n\t{{margin:0cm; font-size:11.0pt;}}\n"
        for n in range(350)
    )
    return (
        "From: Alice Example <demo@example.com>\nSubject: Pumpe P-101\n"
        "Message-ID: <outlook-1@client.example>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="_000_"\n\n'
        "--_000_\nContent-Type: text/plain; charset=us-ascii\n\n"
        "Pump P-101 pressure high, please check.\n.\n..\n\n"
        "--_000_\nContent-Type: text/html; charset=us-ascii\n\n"
        f"<html><head><style><!--\n{rules}--></style></head><body>"
        "<p>Pump P-101 pressure high, please check.</p></body></html>\n"
        "--_000_--\n"
    ).encode("ascii")
