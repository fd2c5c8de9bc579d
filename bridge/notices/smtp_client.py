"""The mailer's SMTP client: one message to one recipient, by the transport table's rules.

For each recipient the table gives the next hop (a relay, or the domain's MX hosts
looked up in DNS) and the TLS level. The session greets with the configured EHLO name,
starts TLS as the level asks (and checks the certificate as it asks), logs in only to
the configured default relay, and only then sends MAIL: under `encrypt`, `verify` and
`secure` a session that is not encrypted never reaches MAIL. Failures are classified
by `bridge.notices.refusals`; a temporary failure before MAIL moves on to the next MX
host, a reply from MAIL on ends the attempt.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib
from dns.asyncresolver import Resolver

from bridge.errors import BridgeError, PermanentFailure, TemporaryFailure
from bridge.mail_address import header_address
from bridge.notices import mx
from bridge.notices.refusals import Refusal, classify
from bridge.notices.transport_table import Delivery, TlsLevel, TransportTable, names_match


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


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    password: str


class SmtpClient:
    def __init__(
        self,
        table: TransportTable,
        *,
        ehlo_name: str,
        timeout: float,
        login: Login | None = None,
        dns_servers: Sequence[str] = (),
    ) -> None:
        self.table = table
        self.ehlo_name = ehlo_name
        self.timeout = timeout
        self.login = login
        self.dns_servers = tuple(dns_servers)
        self._resolver: Resolver | None = None
        self._contexts: dict[tuple[TlsLevel, Path | None], ssl.SSLContext] = {}

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
        smtp = aiosmtplib.SMTP(
            hostname=address,
            port=port,
            local_hostname=self.ehlo_name,
            timeout=self.timeout,
            start_tls=False,
            use_tls=False,
        )
        after_mail = False
        try:
            await smtp.connect()
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
            await smtp.sendmail(sender, [recipient], data, mail_options=_options(smtp, data))
        except _Failed:
            raise
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
            raise _Failed(classify(exc, where), after_mail=after_mail) from exc
        finally:
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
        context = self._context(delivery.tls, delivery.ca_file)
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
        await smtp.ehlo()  # RFC 3207: forget what was said before TLS

    def _context(self, level: TlsLevel, ca_file: Path | None) -> ssl.SSLContext:
        key = (level, ca_file if level.verified else None)
        context = self._contexts.get(key)
        if context is None:
            if level.verified:
                context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
                context.check_hostname = level is TlsLevel.VERIFY  # secure: names_match
            else:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._contexts[key] = context
        return context


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


def _options(smtp: aiosmtplib.SMTP, data: bytes) -> list[str]:
    if smtp.supports_extension("8bitmime") and not data.isascii():
        return ["BODY=8BITMIME"]
    return []


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


async def _close(smtp: aiosmtplib.SMTP) -> None:
    if smtp.is_connected:
        try:
            await smtp.quit(timeout=5.0)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            smtp.close()
