"""A scripted SMTP relay (aiosmtpd) for the mailer's tests: replies per command, STARTTLS.

`replies` makes the relay answer MAIL, RCPT or DATA with a given reply (e.g.
`{"RCPT": "550 5.1.1 <x>: no such user"}`); `delay` makes it wait that many seconds
before each answer to MAIL, RCPT and DATA (a slow relay); `fqdn_helo=True` refuses a non-FQDN EHLO
name at RCPT the way Postfix's `reject_non_fqdn_helo_hostname` does. The relay records
every EHLO name, every MAIL it saw (with whether the session was encrypted) and every
accepted message.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope


@dataclass
class Seen:
    """One MAIL command as the relay saw it."""

    mail_from: str
    helo: str
    encrypted: bool


@dataclass
class RelayHandler:
    replies: dict[str, str] = field(default_factory=dict)
    fqdn_helo: bool = False
    delay: float = 0.0
    mails: list[Seen] = field(default_factory=list)
    accepted: list[Envelope] = field(default_factory=list)
    encrypted: list[bool] = field(default_factory=list)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.delay)
        self.mails.append(Seen(address, str(session.host_name), session.ssl is not None))
        if "MAIL" in self.replies:
            return self.replies["MAIL"]
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.delay)
        if self.fqdn_helo and "." not in str(session.host_name).strip("[]"):
            return (
                f"504 5.5.2 <{session.host_name}>: Helo command rejected: "
                "need fully-qualified hostname"
            )
        if "RCPT" in self.replies:
            return self.replies["RCPT"]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        await asyncio.sleep(self.delay)
        if "DATA" in self.replies:
            return self.replies["DATA"]
        self.accepted.append(envelope)
        self.encrypted.append(session.ssl is not None)
        return "250 OK queued"

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(e.content, policy=email.policy.default)  # type: ignore[arg-type]
            for e in self.accepted
        ]


@asynccontextmanager
async def smtp_relay(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: ssl.SSLContext | None = None,
    **handler_args: Any,
) -> AsyncIterator[tuple[RelayHandler, int]]:
    """A relay on `host` (port 0: any free port), offering STARTTLS when given `tls`."""
    handler = RelayHandler(**handler_args)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="relay.test", tls_context=tls), host=host, port=port
    )
    try:
        yield handler, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
