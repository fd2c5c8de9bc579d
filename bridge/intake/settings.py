"""The `[smtp]` table: the SMTP listener (intake), its TLS, limits, hygiene and backpressure."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from bridge.domains import DomainError, configured_domain
from bridge.intake.access import check_cidrs
from bridge.intake.addresses import SMS_SERVICES
from bridge.sections import Port, Seconds, Section

_SERVICE = re.compile(r"[A-Z][A-Z0-9_-]{0,9}")  # as `SERVICE=` in an address is read


class SmtpSettings(Section):
    """The SMTP listener (intake)."""

    host: str = "127.0.0.1"
    port: Port = 2525
    hostname: str = "mailsms.localdomain"
    domains: tuple[str, ...] = ("eu.rsms.net",)
    # The service prefixes of `SERVICE=+49…@domain` taken as SMS (SAP: the pager services
    # of transaction SA14); any other prefix (FAX=, X400=) is refused with 550 5.1.3.
    sms_services: tuple[str, ...] = SMS_SERVICES
    data_size_limit: Annotated[int, Field(ge=1024)] = 1_048_576
    max_recipients: Annotated[int, Field(ge=1, le=10_000)] = 100
    parse_in_thread_above: Annotated[int, Field(ge=0)] = 65_536
    domain_customers: dict[str, str] = Field(default={})  # pydantic copies it per instance
    # TLS (STARTTLS): a certificate chain and key turn it on.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    require_tls: bool = True
    plaintext_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    # Sessions and connections.
    timeout: Seconds = 120.0
    # Junk commands are limited (NOOP keep-alive, probing); an MTA may send many mails
    # over one connection, so MAIL/RCPT/DATA (under "*") have a high limit.
    command_call_limit: dict[str, int] = Field(
        default={
            "NOOP": 20,
            "RSET": 1000,
            "VRFY": 10,
            "EXPN": 10,
            "HELP": 10,
            "*": 100_000,
        }
    )
    # A session that sends this many commands (other than RCPT and DATA) without a mail
    # being accepted is closed with 421 (RSET/NOOP keep-alive, probing).
    idle_command_limit: Annotated[int, Field(ge=1)] = 100
    # PIPELINING (RFC 2920) offered after EHLO: a client may send MAIL, RCPT... and DATA
    # in one go and read the replies together. Off: every command waits for its reply.
    pipelining: bool = True
    # AUTH failures, counted per client address and per login across sessions (in this
    # process): the n-th failure within the window is answered after a delay that
    # doubles from auth_failure_delay up to auth_failure_delay_max; at the limit the
    # address or login is locked for auth_lockout seconds (421 4.7.0, logged).
    auth_max_failures: Annotated[int, Field(ge=1)] = 10
    auth_max_failures_per_login: Annotated[int, Field(ge=1)] = 20
    auth_failure_window: Seconds = 600.0
    auth_lockout: Seconds = 900.0
    auth_failure_delay: Annotated[float, Field(ge=0)] = 0.5
    auth_failure_delay_max: Annotated[float, Field(ge=0)] = 8.0
    max_connections: Annotated[int, Field(ge=1)] = 1000
    max_connections_per_ip: Annotated[int, Field(ge=1)] = 50
    max_connections_per_ip_per_minute: Annotated[int, Field(ge=1)] = 600
    # Content hygiene.
    bare_line_endings: Literal["reject", "normalize"] = "reject"
    normalize_networks: tuple[str, ...] = ()
    max_received: Annotated[int, Field(ge=2)] = 30
    dedupe_window: Annotated[float, Field(ge=0)] = 86_400.0
    # Backpressure: 452 4.3.1 at MAIL above these marks.
    queue_high_water: Annotated[int, Field(ge=1)] = 200_000
    min_free_disk_mb: Annotated[int, Field(ge=0)] = 200
    # DSN (RFC 3461/3464).
    dsn_delay_after: Seconds = 14_400.0

    @model_validator(mode="after")
    def _domains_canonical(self) -> SmtpSettings:
        if not self.domains:
            raise ValueError("domains: expected at least one domain, e.g. ['eu.rsms.net']")
        domains = tuple(dict.fromkeys(_canonical("domains", d) for d in self.domains))
        object.__setattr__(self, "domains", domains)
        services = tuple(s.strip().upper() for s in self.sms_services)
        bad = [s for s in services if not _SERVICE.fullmatch(s)]
        if bad:
            raise ValueError(
                f"sms_services: {bad[0]!r} is no service name; write a letter, then up to 9 "
                "letters, digits, '_' or '-', as in SA14 (e.g. ['SMS', 'SMS2'])"
            )
        object.__setattr__(self, "sms_services", services)
        object.__setattr__(
            self,
            "domain_customers",
            {_canonical("domain_customers", d): c for d, c in self.domain_customers.items()},
        )
        unknown = [d for d in self.domain_customers if d not in self.domains]
        if unknown:
            raise ValueError(f"domain_customers: {unknown} are not in domains {list(self.domains)}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key: give both (the certificate chain and its key)")
        check_cidrs(self.plaintext_networks)
        check_cidrs(self.normalize_networks)
        return self


def _canonical(key: str, domain: str) -> str:
    """A configured domain in the one form addresses are matched in (`bridge/domains.py`):
    `sms.büro.example` and `SMS.xn--BRO-hoa.example` are `sms.xn--bro-hoa.example`."""
    try:
        return configured_domain(domain)
    except DomainError as exc:
        raise ValueError(
            f"{key}: {domain!r} is not a domain name ({exc.reason}); write it as the clients "
            "address it, e.g. 'sms.example.com', or an internationalized one as "
            "'sms.büro.example' or its A-label 'sms.xn--bro-hoa.example'"
        ) from None
