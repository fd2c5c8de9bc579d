"""The mailer's SMTP client: one message to one recipient, by the transport table's rules.

For each recipient the table gives the next hop (a relay, or the domain's MX hosts
looked up in DNS) and the TLS level. The session greets with the configured EHLO name,
starts TLS as the level asks (and checks the certificate as it asks), logs in only to
the configured default relay, and only then sends MAIL: under `encrypt`, `verify` and
`secure` a session that is not encrypted never reaches MAIL. Failures are classified
by `bridge.notices.refusals`; a temporary failure before MAIL moves on to the next MX
host, a reply from MAIL on ends the attempt.

Inside TLS the client shows its certificate (`tls_cert_file`, `bridge.notices.client_tls`)
to a server that asks for one. The TLS contexts are built when the mailer starts
(`prepare`), so a CA file or certificate that cannot be used stops the start instead of
deferring notices. A relay that refuses the session right after the handshake (one
that wants a client certificate it trusts: Postfix's 421 "No client certificate
presented", TLS 1.3's "certificate required" alert) defers the notice, and its reason
says which certificate, if any, the mailer showed.

Sessions are reused, as Postfix's connection cache does: a session whose mail went
through is kept for `cache_time` seconds, and the next mail for the same host, port and
delivery rules (TLS level, certificate checks, login) goes over it, with MAIL at once —
no connect, greeting, STARTTLS or login again. A session is used for at most
`reuse_count` mails and `reuse_time` seconds, and only after a mail that went through: a
refused or broken one is closed. A kept session the relay has closed meanwhile (it hung
up, or answers the next MAIL with 421 or not at all) is closed and the mail goes over a
new session — the relay had accepted nothing of it, so nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import aiosmtplib
from dns.asyncresolver import Resolver

from bridge.errors import BridgeError, ConfigError, PermanentFailure, TemporaryFailure
from bridge.mail_address import header_address
from bridge.notices import mx
from bridge.notices.client_tls import cert_info, load_client_cert
from bridge.notices.refusals import Refusal, classify
from bridge.notices.transport_table import (
    ClientCert,
    Delivery,
    Reuse,
    TlsLevel,
    TlsRule,
    TransportTable,
    names_match,
)

log = logging.getLogger("bridge.notices.smtp_client")


class DeliveryError(BridgeError):
    """A delivery attempt failed: one of the two below."""


class DeliveryDeferred(DeliveryError, TemporaryFailure):
    """The notice is retried (a 4xx reply, no connection, a TLS failure, a DNS timeout)."""


class DeliveryFailed(DeliveryError, PermanentFailure):
    """The notice fails at once: a 5xx reply to EHLO, MAIL, RCPT or DATA, a domain that
    takes no mail, an address no header may carry."""


class _Failed(Exception):
    """One session failed; `after_mail` once the relay had the envelope."""

    def __init__(self, refusal: Refusal, *, after_mail: bool, tls_failed: bool = False) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal
        self.after_mail = after_mail
        self.tls_failed = tls_failed


class SessionEvent(StrEnum):
    """What happened to an SMTP session (the mailer counts them: a metric)."""

    OPENED = "opened"  # a new connection (connect, EHLO, STARTTLS, AUTH as the rules say)
    REUSED = "reused"  # a mail went through over a kept session
    ENDED_BY_RELAY = "ended_by_relay"  # a kept session the relay had ended meanwhile


class _Stale(Exception):
    """A kept session the relay closed meanwhile: MAIL got no answer or 421."""


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class _Key:
    """What a kept session may be reused for: the same host and the same rules."""

    address: str
    name: str
    port: int
    delivery: Delivery
    plain: bool  # `may` after a failed STARTTLS


@dataclass(slots=True)
class _Kept:
    smtp: aiosmtplib.SMTP
    opened: float  # clock of its connect
    mails: int = 0
    idle_since: float = 0.0


class SessionCache:
    """The idle sessions, per `_Key`, each closed after `cache_time` seconds unused."""

    def __init__(self, reuse: Reuse, clock: Callable[[], float] = time.monotonic) -> None:
        self.reuse = reuse
        self.clock = clock
        self._idle: dict[_Key, list[_Kept]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return sum(map(len, self._idle.values()))

    def take(self, key: _Key) -> _Kept | None:
        """The most recently used idle session for `key` that may still be used."""
        kept = self._idle.get(key)
        now = self.clock()
        while kept:
            session = kept.pop()
            if session.smtp.is_connected and now - session.opened < self.reuse.lifetime:
                return session
            self._close_later(session)
        return None

    def put(self, key: _Key, session: _Kept) -> None:
        """Keep `session` after a mail that went through (closed when used up, and when
        the relay sent more than its replies: see `_unread`)."""
        session.mails += 1
        now = self.clock()
        spent = session.mails >= self.reuse.count or now - session.opened >= self.reuse.lifetime
        if spent or self.reuse.cache_time <= 0 or not session.smtp.is_connected:
            self._close_later(session)
            return
        if _unread(session.smtp):
            log.info("%s sent more than its replies; the session is not kept", key.name)
            self._close_later(session)
            return
        session.idle_since = now
        self._idle.setdefault(key, []).append(session)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.reuse.cache_time, self._expire)

    def _expire(self) -> None:
        """Close the sessions idle for `cache_time`; look again when the next one is due."""
        self._timer = None
        now = self.clock()
        due = now - self.reuse.cache_time
        soonest: float | None = None
        for key in list(self._idle):
            keep = []
            for session in self._idle[key]:
                if session.idle_since <= due:
                    self._close_later(session)
                else:
                    keep.append(session)
                    if soonest is None or session.idle_since < soonest:
                        soonest = session.idle_since
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]
        if soonest is not None:
            wait = max(0.01, soonest + self.reuse.cache_time - now)
            self._timer = asyncio.get_running_loop().call_later(wait, self._expire)

    def _close_later(self, session: _Kept) -> None:
        task = asyncio.get_running_loop().create_task(_close(session.smtp))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """QUIT every idle session (at stop)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for kept in self._idle.values():
            for session in kept:
                self._close_later(session)
        self._idle.clear()
        await asyncio.gather(*self._closing, return_exceptions=True)


class SmtpClient:
    def __init__(
        self,
        table: TransportTable,
        *,
        ehlo_name: str,
        timeout: float,
        login: Login | None = None,
        dns_servers: Sequence[str] = (),
        reuse: Reuse | None = None,
        on_session: Callable[[SessionEvent], object] = lambda event: None,
    ) -> None:
        self.table = table
        self.ehlo_name = ehlo_name
        self.timeout = timeout
        self.login = login
        self.dns_servers = tuple(dns_servers)
        self.sessions = SessionCache(reuse or Reuse())
        self.on_session = on_session  # told of each session opened, reused, ended by the relay
        self._resolver: Resolver | None = None
        self._contexts: dict[TlsRule, ssl.SSLContext] = {}

    def prepare(self) -> None:
        """Build every TLS context the table can need, at start: a CA file or a client
        certificate that cannot be used is a ConfigError saying what to fix (not a
        deferred notice later), and each client certificate is logged."""
        shown: set[Path] = set()
        for rule, used_by in self.table.tls_rules().items():
            if rule.tls is TlsLevel.NONE:
                continue
            self._contexts[rule] = _new_context(rule, used_by[0])
            cert = rule.client_cert
            if cert is not None and cert.cert_file not in shown:
                shown.add(cert.cert_file)
                log.info(
                    "client certificate for relays that ask for one (%s): %s",
                    "; ".join(used_by),
                    cert_info(cert.cert_file),
                )

    def client_certificates(self) -> dict[ClientCert, list[ssl.SSLContext]]:
        """Each client certificate of the table, with the TLS contexts `prepare` loaded it
        into (none before `prepare`): where a renewed certificate is to be loaded."""
        held: dict[ClientCert, list[ssl.SSLContext]] = {}
        for rule in self.table.tls_rules():
            if rule.client_cert is not None:
                held.setdefault(rule.client_cert, [])
        for rule, context in self._contexts.items():
            if rule.client_cert is not None:
                held.setdefault(rule.client_cert, []).append(context)
        return held

    async def close(self) -> None:
        """Close the kept sessions (QUIT)."""
        await self.sessions.close()

    def resolver(self) -> Resolver:
        if self._resolver is None:
            self._resolver = mx.make_resolver(self.dns_servers, self.timeout)
        return self._resolver

    async def send(self, data: bytes, sender: str, recipient: str) -> None:
        """Deliver `data`; raises DeliveryDeferred or DeliveryFailed.

        The envelope carries the addresses as the headers do (`header_address`): an
        internationalized domain as its A-label. A local part that is not ASCII would need
        SMTPUTF8, which the bridge does not send: DeliveryFailed, saying so."""
        recipient, sender = _envelope(recipient), _envelope(sender) if sender else ""
        delivery = self.table.lookup(recipient)
        hop = delivery.hop
        if hop.mx:
            try:
                found = await mx.mx_targets(self.resolver(), hop.host)
            except mx.DnsPermanentFailure as exc:
                raise DeliveryFailed(str(exc)) from exc
            except mx.DnsFailure as exc:
                raise DeliveryDeferred(str(exc)) from exc
            targets = [(t.address, t.host) for t in found]
        else:
            targets = [(hop.host, hop.host)]
        reasons: list[str] = []
        last: _Failed | None = None
        for address, name in targets:
            try:
                await self._session(address, name, hop.port, delivery, data, sender, recipient)
                return
            except _Failed as exc:
                if exc.tls_failed and delivery.tls is TlsLevel.MAY:
                    try:  # opportunistic TLS that fails: plaintext, as Postfix does
                        await self._session(
                            address, name, hop.port, delivery, data, sender, recipient, plain=True
                        )
                        return
                    except _Failed as again:
                        exc = again
                if exc.refusal.permanent:
                    raise DeliveryFailed(exc.refusal.reason) from exc
                if exc.after_mail:
                    raise DeliveryDeferred(exc.refusal.reason) from exc
                reasons.append(exc.refusal.reason)
                last = exc
        raise DeliveryDeferred("; ".join(reasons)) from last

    async def _session(
        self,
        address: str,
        name: str,
        port: int,
        delivery: Delivery,
        data: bytes,
        sender: str,
        recipient: str,
        *,
        plain: bool = False,
    ) -> None:
        where = f"{name}[{address}]:{port}" if name != address else f"{address}:{port}"
        key = _Key(address, name, port, delivery, plain)
        while (kept := self.sessions.take(key)) is not None:
            try:
                await _transaction(kept.smtp, where, data, sender, recipient, reused=True)
            except _Stale:  # hung up meanwhile: the next kept one, or a new one
                log.debug("%s ended the kept session; the mail goes over another", where)
                self.on_session(SessionEvent.ENDED_BY_RELAY)
                await _close(kept.smtp)
                continue
            except BaseException:
                await _close(kept.smtp)
                raise
            self.on_session(SessionEvent.REUSED)
            self.sessions.put(key, kept)
            return
        opened = self.sessions.clock()
        smtp = aiosmtplib.SMTP(
            hostname=address,
            port=port,
            local_hostname=self.ehlo_name,
            timeout=self.timeout,
            start_tls=False,
            use_tls=False,
        )
        after_mail = sent = False
        try:
            await smtp.connect()
            self.on_session(SessionEvent.OPENED)  # connected (a refused connect is none)
            await _greet(smtp)
            if delivery.tls is not TlsLevel.NONE and not plain:
                await self._start_tls(smtp, where, name, delivery)
            if delivery.tls.required and smtp.get_transport_info("sslcontext") is None:
                raise _Failed(
                    Refusal(f"{where}: not encrypted; TLS level {delivery.tls} forbids plaintext",
                            permanent=False),
                    after_mail=False,
                )  # fmt: skip
            if delivery.authenticate and self.login is not None:
                await smtp.login(self.login.username, self.login.password)
            after_mail = True
            await _transaction(smtp, where, data, sender, recipient, reused=False)
            sent = True
        except _Failed:
            raise
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
            raise _Failed(classify(exc, where), after_mail=after_mail) from exc
        finally:
            if sent:
                self.sessions.put(key, _Kept(smtp, opened))
            else:
                await _close(smtp)

    async def _start_tls(
        self, smtp: aiosmtplib.SMTP, where: str, name: str, delivery: Delivery
    ) -> None:
        if not smtp.supports_extension("starttls"):
            if delivery.tls.required:
                raise _Failed(
                    Refusal(
                        f"{where} offers no STARTTLS; TLS level {delivery.tls} forbids plaintext",
                        permanent=False,
                    ),
                    after_mail=False,
                )
            return  # `may`: plaintext
        context = self._context(delivery.tls_rule)
        try:
            await smtp.starttls(server_hostname=name, tls_context=context)
        except (ssl.SSLError, ssl.CertificateError, aiosmtplib.SMTPException, OSError) as exc:
            raise _Failed(
                Refusal(f"{where}: STARTTLS failed: {_tls_reason(exc)}", permanent=False),
                after_mail=False,
                tls_failed=True,
            ) from exc
        if delivery.tls is TlsLevel.SECURE:
            names = _certificate_names(smtp)
            if not names_match(names, delivery.tls_match):
                raise _Failed(
                    Refusal(
                        f"{where}: the certificate names {', '.join(names) or 'nothing'}, "
                        f"not {' or '.join(delivery.tls_match)} (TLS level secure)",
                        permanent=False,
                    ),
                    after_mail=False,
                )
        try:  # RFC 3207: forget what was said before TLS
            await smtp.ehlo()
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
            raise _Failed(_refused_tls(exc, where, delivery), after_mail=False) from exc

    def _context(self, rule: TlsRule) -> ssl.SSLContext:
        context = self._contexts.get(rule)
        if context is None:  # a table `prepare` did not see: built (and checked) now
            context = self._contexts[rule] = _new_context(rule, "[mailer]")
        return context


def _new_context(rule: TlsRule, where: str) -> ssl.SSLContext:
    """The client context for `rule`; ConfigError when its CA file or client certificate
    cannot be used (`where`: the settings it comes from, for the sentence)."""
    if rule.tls.verified:
        ca_file = rule.ca_file
        try:
            context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{where} tls_ca_file {str(ca_file)!r}: cannot be loaded "
                f"({getattr(exc, 'strerror', None) or exc}); give a PEM file of CA "
                "certificates the bridge's user may read"
            ) from None
        context.check_hostname = rule.tls is TlsLevel.VERIFY  # secure: names_match
    else:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if rule.client_cert is not None:
        load_client_cert(context, rule.client_cert, where)
    return context


def _refused_tls(exc: BaseException, where: str, delivery: Delivery) -> Refusal:
    """The relay ended or refused the session right after the TLS handshake — as one does
    that wants a client certificate and got none it trusts (TLS 1.3 sends that alert after
    the handshake; Postfix answers 421). Temporary whatever the reply: it is about our
    certificate, not the mail, and the operator can fix it while the notice waits."""
    reason = f"TLS session refused after the handshake: {classify(exc, where).reason}"
    cert = delivery.client_cert
    shown = (
        f"we showed the client certificate of {str(cert.cert_file)!r}"
        if cert is not None
        else "the mailer has no client certificate for it (tls_cert_file)"
    )
    if "certificate" in reason.lower():
        reason += f"; {shown}"
    elif isinstance(exc, aiosmtplib.SMTPServerDisconnected | ConnectionError | ssl.SSLError):
        # the alert itself is often lost with the connection: say what it likely was
        reason += f" (as a relay does that wants a client certificate it trusts); {shown}"
    return Refusal(reason, permanent=False)


def _envelope(address: str) -> str:
    ascii_form = header_address(address)
    if ascii_form is None:
        raise DeliveryFailed(
            f"<{address}>: not a mail address the bridge can send to (a local part that is "
            "not ASCII needs SMTPUTF8, which the bridge does not use)"
        )
    return ascii_form


async def _greet(smtp: aiosmtplib.SMTP) -> None:
    """EHLO, or HELO for a server that does not know EHLO (RFC 5321 §3.2)."""
    try:
        await smtp.ehlo()
    except aiosmtplib.SMTPHeloError as exc:
        if exc.code not in (500, 502):
            raise
        await smtp.helo()


async def _transaction(
    smtp: aiosmtplib.SMTP, where: str, data: bytes, sender: str, recipient: str, *, reused: bool
) -> None:
    """MAIL, RCPT and DATA for one mail. On a `reused` session, no answer to MAIL or a 421
    raises _Stale: the relay closed it while it was kept, and has nothing of this mail.

    A mail with 8-bit octets goes only to a relay that offered 8BITMIME (RFC 6152); to
    any other it fails before MAIL, as a strict relay would refuse it after DATA and a
    lenient one pass it on mangled. The notices are 7-bit (`bridge.notices.mime`), so
    this is the guard for a mail that is not."""
    if not data.isascii() and not smtp.supports_extension("8bitmime"):
        raise _Failed(
            Refusal(
                f"{where} does not offer 8BITMIME and the mail has 8-bit octets: not sent "
                "(RFC 6152)",
                permanent=True,
            ),
            after_mail=False,
        )
    try:
        await smtp.mail(sender, options=_options(smtp, data))
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
        if reused:
            raise _Stale from exc
        raise _Failed(classify(exc, where), after_mail=True) from exc
    except aiosmtplib.SMTPResponseException as exc:
        if reused and exc.code == 421:
            raise _Stale from exc
        raise _Failed(classify(exc, where), after_mail=True) from exc
    try:
        try:
            await smtp.rcpt(recipient)
        except aiosmtplib.SMTPRecipientRefused as exc:
            raise aiosmtplib.SMTPRecipientsRefused([exc]) from exc
        await smtp.data(data)
    except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
        raise _Failed(classify(exc, where), after_mail=True) from exc


def _options(smtp: aiosmtplib.SMTP, data: bytes) -> list[str]:
    """MAIL's parameters: SIZE (RFC 1870, counted with CRLF line ends) and 8BITMIME."""
    options = []
    if smtp.supports_extension("size"):
        crlf_size = len(data) + data.count(b"\n") - data.count(b"\r\n")
        options.append(f"SIZE={crlf_size}")
    if smtp.supports_extension("8bitmime") and not data.isascii():
        options.append("BODY=8BITMIME")
    return options


def _certificate_names(smtp: aiosmtplib.SMTP) -> list[str]:
    cert = smtp.get_transport_info("peercert") or {}
    names = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
    if not names:
        for rdn in cert.get("subject", ()):
            names.extend(v for k, v in rdn if k == "commonName")
    return names


def _tls_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not trusted ({exc.verify_message})"
    return str(exc) or type(exc).__name__


def _unread(smtp: aiosmtplib.SMTP) -> bool:
    """Whether bytes the relay sent wait unread after the last reply. A relay that
    answers a command twice leaves its second reply there, and a kept session would read
    it as the reply to the next mail's MAIL, and every reply after it one command late
    (a 554 to DATA taken for "250 to DATA"). aiosmtplib keeps the bytes it has read past
    a reply in its protocol's buffer, which it does not expose; a test
    (test_mailer_delivery.py) fails if that changes."""
    return bool(getattr(smtp.protocol, "_buffer", b""))


async def _close(smtp: aiosmtplib.SMTP) -> None:
    if smtp.is_connected:
        try:
            await smtp.quit(timeout=5.0)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            smtp.close()
