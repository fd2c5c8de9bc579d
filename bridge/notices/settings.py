"""The `[mailer]` table: where notices go (a Maildir, a relay or the MX), per-domain next hops."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from bridge.notices.transport_table import (
    MX,
    ClientCert,
    Entry,
    Hop,
    Reuse,
    TlsLevel,
    TransportTable,
    check_domain_pattern,
    parse_next_hop,
)
from bridge.sections import Port, Seconds, Section


class MailDeliverySettings(Section):
    """One row of the mailer's transport table: domains → next hop and TLS level."""

    domains: tuple[str, ...]
    next_hop: str = ""  # "": the [mailer] relay; "mx": the domain's MX; "host:port": a relay
    tls: TlsLevel | None = None  # None: the [mailer] tls level
    tls_match: tuple[str, ...] = ()
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None  # None: the [mailer] client certificate
    tls_key_file: Path | None = None

    @model_validator(mode="after")
    def _check(self) -> MailDeliverySettings:
        if not self.domains:
            raise ValueError("domains: expected at least one domain, .domain or *")
        for pattern in self.domains:
            check_domain_pattern(pattern)
        if self.next_hop.strip() and self.next_hop.strip().lower() != MX:
            parse_next_hop(self.next_hop)
        _check_key_file(self.tls_cert_file, self.tls_key_file)
        return self

    def entry(self) -> Entry:
        return Entry(
            self.domains,
            self.next_hop,
            self.tls,
            self.tls_match,
            self.tls_ca_file,
            _client_cert(self.tls_cert_file, self.tls_key_file),
        )


_LEGACY_STARTTLS = {"off": "none", "opportunistic": "may", "required": "verify"}


class MailerSettings(Section):
    """Where notices go: a local Maildir (embedded default) or over SMTP (relay or MX)."""

    mode: Literal["maildir", "smtp"] = "maildir"
    maildir: Path = Path("var/maildir")
    relay_host: str = "127.0.0.1"
    relay_port: Port = 25
    tls: TlsLevel = TlsLevel.MAY
    tls_match: tuple[str, ...] = ()
    tls_ca_file: Path | None = None
    # A client certificate for relays that ask for one (as smtp_tls_cert_file/_key_file);
    # no tls_key_file: the key is in the certificate's file.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    ehlo_name: str = ""  # "": [smtp] hostname
    mx_port: Port = 25
    dns_servers: tuple[str, ...] = ()  # (): the system's resolver
    delivery: tuple[MailDeliverySettings, ...] = ()
    username: str = ""
    password: str = ""
    from_address: str = "mailsms@localhost"
    from_name: str = "SMS Bridge"
    timeout: Seconds = 30.0
    attempt_timeout: Seconds = 240.0  # one delivery in all: every mail host, every reply
    concurrency: Annotated[int, Field(ge=1, le=100)] = 16
    # A session kept after a mail: idle seconds (0: one session per mail), mails, seconds.
    connection_cache_time: Annotated[float, Field(ge=0, le=300)] = 2.0
    connection_reuse_count: Annotated[int, Field(ge=1)] = 100
    connection_reuse_time: Seconds = 300.0
    poll_interval: Seconds = 1.0
    retry_min: Seconds = 60.0
    retry_max: Seconds = 3600.0
    lifetime: Seconds = 432_000.0

    @model_validator(mode="before")
    @classmethod
    def _legacy_starttls(cls, data: Any) -> Any:
        """The older spelling `starttls = off|opportunistic|required` → `tls`."""
        if isinstance(data, dict) and "starttls" in data:
            data = dict(data)
            value = data.pop("starttls")
            if value not in _LEGACY_STARTTLS:
                raise ValueError(
                    f"starttls: expected off, opportunistic or required, got {value!r} "
                    "(or use tls = none, may, encrypt, verify or secure)"
                )
            data.setdefault("tls", _LEGACY_STARTTLS[value])
        return data

    @model_validator(mode="after")
    def _check(self) -> MailerSettings:
        parse_next_hop(f"[{self.relay_host}]" if ":" in self.relay_host else self.relay_host)
        if self.ehlo_name and not _EHLO_NAME.fullmatch(self.ehlo_name):
            raise ValueError(
                f"ehlo_name: expected a fully qualified host name (mail.example.com) or an "
                f"address literal ([192.0.2.1]), got {self.ehlo_name!r}"
            )
        for server in self.dns_servers:
            try:
                ipaddress.ip_address(server.rpartition(":")[0].strip("[]") or server)
            except ValueError:
                raise ValueError(
                    f"dns_servers: expected an IP address with an optional :port, got {server!r}"
                ) from None
        _check_key_file(self.tls_cert_file, self.tls_key_file)
        self._check_cert_used()
        return self

    def _level(self, delivery: MailDeliverySettings) -> TlsLevel:
        return self.tls if delivery.tls is None else delivery.tls

    def _check_cert_used(self) -> None:
        """A client certificate where every delivery that would use it has `tls = none`
        is refused: it would never be shown, so a relay that asks for one refuses every
        notice — a mistake better told at start than found in deferred notices later."""
        for d in self.delivery:
            if d.tls_cert_file is not None and self._level(d) is TlsLevel.NONE:
                raise ValueError(
                    f"delivery for {', '.join(d.domains)}: tls_cert_file is set but tls = "
                    "none, so the certificate would never be shown (it is offered only "
                    "inside TLS); set tls = may or higher, or remove tls_cert_file"
                )
        if self.tls_cert_file is None or self.tls is not TlsLevel.NONE:
            return
        inheriting = [d for d in self.delivery if d.tls_cert_file is None]
        if all(self._level(d) is TlsLevel.NONE for d in inheriting):
            raise ValueError(
                "tls_cert_file is set but tls = none, so the certificate would never be "
                "shown (it is offered only inside TLS); set tls = may or higher, or remove "
                "tls_cert_file"
            )

    def reuse(self) -> Reuse:
        return Reuse(
            self.connection_cache_time, self.connection_reuse_count, self.connection_reuse_time
        )

    def transport_table(self) -> TransportTable:
        return TransportTable(
            [d.entry() for d in self.delivery],
            relay=Hop(self.relay_host.lower(), self.relay_port),
            tls=self.tls,
            tls_match=self.tls_match,
            ca_file=self.tls_ca_file,
            client_cert=_client_cert(self.tls_cert_file, self.tls_key_file),
            mx_port=self.mx_port,
        )


def _check_key_file(cert_file: Path | None, key_file: Path | None) -> None:
    if key_file is not None and cert_file is None:
        raise ValueError(
            "tls_key_file is set without tls_cert_file: set tls_cert_file to the client "
            "certificate the key belongs to, or remove tls_key_file"
        )


def _client_cert(cert_file: Path | None, key_file: Path | None) -> ClientCert | None:
    return None if cert_file is None else ClientCert(cert_file, key_file)


# A host name with at least one dot, or an address literal ([192.0.2.1], [IPv6:…]).
_EHLO_NAME = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?\.?|\[[0-9.]+\]|\[IPv6:[0-9A-Fa-f:.]+\]"
)
