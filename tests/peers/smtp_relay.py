"""A scripted SMTP relay (aiosmtpd) for the mailer's tests: replies per command, STARTTLS.

`replies` makes the relay answer MAIL, RCPT or DATA with a given reply (e.g.
`{"RCPT": "550 5.1.1 <x>: no such user"}`); `delay` makes it wait that many seconds
before each answer to MAIL, RCPT and DATA (a slow relay); `fqdn_helo=True` refuses a non-FQDN EHLO
name at RCPT the way Postfix's `reject_non_fqdn_helo_hostname` does. The relay records
every EHLO name, every MAIL it saw (with whether the session was encrypted) and every
accepted message, and counts connections and QUITs.

Relays limit a session: `mails_per_session` makes it end a session at the MAIL after
that many mails, answering `over_limit` (a 421, as Exchange and others do) and closing,
or closing without a word (`over_limit=""`: a relay that dropped an idle session
unnoticed); `timeout` is aiosmtpd's idle timeout (it answers 421 and closes, as
Postfix's smtpd does after `smtpd_timeout`).
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
    mails_per_session: int = 0  # 0: no limit
    over_limit: str = "421 4.7.0 too many messages in this session, closing"
    mails: list[Seen] = field(default_factory=list)
    accepted: list[Envelope] = field(default_factory=list)
    encrypted: list[bool] = field(default_factory=list)
    connections: int = 0
    quits: int = 0
    _per_session: dict[int, int] = field(default_factory=dict)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.delay)
        done = self._per_session.get(id(session), 0)
        if self.mails_per_session and done >= self.mails_per_session:
            if not self.over_limit:  # gone without a word
                server.transport.abort()
                return "250 never seen"
            asyncio.get_running_loop().call_soon(server.transport.close)  # after the reply
            return self.over_limit
        self._per_session[id(session)] = done + 1
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

    async def handle_QUIT(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.quits += 1
        return "221 Bye"

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
    timeout: float = 300.0,
    **handler_args: Any,
) -> AsyncIterator[tuple[RelayHandler, int]]:
    """A relay on `host` (port 0: any free port), offering STARTTLS when given `tls`."""
    handler = RelayHandler(**handler_args)
    loop = asyncio.get_running_loop()

    def session() -> SMTP:
        handler.connections += 1
        return SMTP(handler, hostname="relay.test", tls_context=tls, timeout=timeout)

    server = await loop.create_server(session, host=host, port=port)
    try:
        yield handler, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
