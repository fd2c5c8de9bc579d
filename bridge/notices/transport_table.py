"""The mailer's transport table: per recipient domain, the next hop and the TLS level.

Pure code, like Postfix's `transport_maps` plus `smtp_tls_policy_maps` in one table.
An entry names domains as `example.com` (that domain), `.example.com` (its subdomains)
or `*` (every domain); the most specific entry wins (the domain itself, then its
nearest parent, then `*`), and without one the `[mailer]` relay and TLS level apply.

The next hop is a relay (`host`, `host:port`, `[2001:db8::1]:25`) or `mx` (the recipient
domain's MX hosts from DNS, at `mx_port`). TLS levels, as Postfix names them:

* `none`: never STARTTLS;
* `may`: STARTTLS when offered, certificate not checked (plaintext otherwise);
* `encrypt`: STARTTLS required, certificate not checked;
* `verify`: STARTTLS required, the certificate chains to a trusted CA and names the
  host connected to (the relay's name or the MX host's name);
* `secure`: as verify, but the certificate must carry one of `tls_match` (default: the
  recipient domain and its subdomains for MX delivery, the relay's name for a relay),
  so a forged MX record cannot redirect the mail.

Under `encrypt`, `verify` and `secure` nothing is ever sent in plaintext: the notice
waits (deferred) until the next hop offers what the level asks for.

A client certificate (`tls_cert_file`, `tls_key_file`, as Postfix's `smtp_tls_cert_file`)
is offered inside TLS at every level but `none`, to a next hop that asks for one; an
entry's certificate replaces the `[mailer]` one for its domains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from bridge.domains import DomainError, address_domain


class TlsLevel(StrEnum):
    NONE = "none"
    MAY = "may"
    ENCRYPT = "encrypt"
    VERIFY = "verify"
    SECURE = "secure"

    @property
    def required(self) -> bool:
        """Must the session be encrypted before MAIL?"""
        return self in (TlsLevel.ENCRYPT, TlsLevel.VERIFY, TlsLevel.SECURE)

    @property
    def verified(self) -> bool:
        """Must the certificate chain to a trusted CA?"""
        return self in (TlsLevel.VERIFY, TlsLevel.SECURE)


MX = "mx"


@dataclass(frozen=True, slots=True)
class Hop:
    """A relay host and port (`mx=False`), or MX delivery to a domain at `port`."""

    host: str
    port: int
    mx: bool = False

    def __str__(self) -> str:
        if self.mx:
            return f"MX of {self.host} (port {self.port})"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ClientCert:
    """The certificate the mailer shows a next hop that asks for one: a PEM file with the
    certificate (and its chain), and the key's file (None: the key is in `cert_file`)."""

    cert_file: Path
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class TlsRule:
    """What a TLS context depends on: the level, the CA file (only `verify`/`secure`
    check the certificate with it) and the client certificate."""

    tls: TlsLevel
    ca_file: Path | None
    client_cert: ClientCert | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one recipient domain is reached: the next hop and the TLS rules for it."""

    hop: Hop
    tls: TlsLevel
    tls_match: tuple[str, ...]  # names the certificate must carry under `secure`
    ca_file: Path | None
    authenticate: bool  # send the relay login (only to the configured default relay)
    client_cert: ClientCert | None = None  # offered inside TLS to a next hop that asks

    @property
    def tls_rule(self) -> TlsRule:
        return TlsRule(self.tls, self.ca_file if self.tls.verified else None, self.client_cert)


@dataclass(frozen=True, slots=True)
class Reuse:
    """How long the mailer keeps an SMTP session for the next mail, and for how many."""

    cache_time: float = 2.0  # seconds a session waits for the next mail (0: never kept)
    count: int = 100  # mails over one session at most
    lifetime: float = 300.0  # seconds from a session's connect after which it is not reused


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of the table, as configured (`next_hop` "" = the default relay)."""

    domains: tuple[str, ...]
    next_hop: str = ""
    tls: TlsLevel | None = None
    tls_match: tuple[str, ...] = ()
    ca_file: Path | None = None
    client_cert: ClientCert | None = None  # None: the [mailer] one


def parse_next_hop(value: str, default_port: int = 25) -> Hop:
    """`host`, `host:port`, `[v6 or host]:port` → Hop; ValueError with a sentence otherwise."""
    text = value.strip()
    port = default_port
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"next hop {value!r}: expected [host]:port")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"next hop {value!r}: the port must be 1-65535")
        port = int(port_text)
    if not host or any(c.isspace() for c in host) or "/" in host:
        raise ValueError(f"next hop {value!r}: expected host, host:port or [address]:port")
    return Hop(host.lower().rstrip("."), port)


def check_domain_pattern(pattern: str) -> str:
    """`example.com`, `.example.com` or `*`, lower-cased, an internationalized domain as
    its A-label (as recipients are looked up); ValueError otherwise."""
    p = pattern.strip().lower().rstrip(".")
    if p == "*":
        return p
    name = p.removeprefix(".")
    labels = name.split(".")
    if not name or not all(
        label and len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum()
        for label in labels
    ):
        raise ValueError(f"domain {pattern!r}: expected example.com, .example.com or *")
    return p.removesuffix(name) + _ascii_domain(name)


class TransportTable:
    """Recipient domain → Delivery, built once from the settings."""

    def __init__(
        self,
        entries: Sequence[Entry],
        *,
        relay: Hop,
        tls: TlsLevel,
        tls_match: tuple[str, ...] = (),
        ca_file: Path | None = None,
        client_cert: ClientCert | None = None,
        mx_port: int = 25,
    ) -> None:
        self.default = Entry(("*",), "", tls, tls_match, ca_file, client_cert)
        self.tls = TlsLevel(tls)
        self.relay = relay
        self.mx_port = mx_port
        self._entries: dict[str, Entry] = {}
        for entry in entries:
            for pattern in entry.domains:
                self._entries.setdefault(check_domain_pattern(pattern), entry)

    def entry_for(self, domain: str) -> Entry:
        """The most specific entry for `domain` (itself, nearest parent, `*`, the default)."""
        name = domain.lower().rstrip(".")
        hit = self._entries.get(name)
        if hit is not None:
            return hit
        labels = name.split(".")
        for i in range(1, len(labels)):
            hit = self._entries.get("." + ".".join(labels[i:]))
            if hit is not None:
                return hit
        return self._entries.get("*", self.default)

    def lookup(self, recipient: str) -> Delivery:
        """How to deliver to `recipient` (a mail address). Its domain is looked up, and its
        MX asked for, in the A-label form the entries' domains are kept in."""
        domain = _ascii_domain(recipient.rpartition("@")[2].rstrip(".")).lower()
        entry = self.entry_for(domain)
        next_hop = entry.next_hop.strip()
        if next_hop.lower() == MX:
            hop = Hop(domain, self.mx_port, mx=True)
        elif next_hop:
            hop = parse_next_hop(next_hop)
        else:
            hop = self.relay
        tls = entry.tls if entry.tls is not None else self.tls
        match = entry.tls_match or ((hop.host, "." + hop.host) if hop.mx else (hop.host,))
        return Delivery(
            hop=hop,
            tls=tls,
            tls_match=tuple(m.lower().rstrip(".") for m in match),
            ca_file=entry.ca_file or self.default.ca_file,
            authenticate=hop == self.relay,
            client_cert=entry.client_cert or self.default.client_cert,
        )

    def tls_rules(self) -> dict[TlsRule, list[str]]:
        """Every TLS rule a delivery can have (level, CA file, client certificate), each
        with where it comes from ("[mailer]", "delivery for example.com"): the contexts
        to build, and the certificates to check, at start."""
        rules: dict[TlsRule, list[str]] = {}
        entries = [("[mailer]", self.default)]
        seen: set[int] = set()
        for entry in self._entries.values():
            if id(entry) not in seen:
                seen.add(id(entry))
                entries.append((f"delivery for {', '.join(entry.domains)}", entry))
        for where, entry in entries:
            tls = entry.tls if entry.tls is not None else self.tls
            rule = TlsRule(
                tls,
                (entry.ca_file or self.default.ca_file) if tls.verified else None,
                entry.client_cert or self.default.client_cert,
            )
            rules.setdefault(rule, []).append(where)
        return rules


def _ascii_domain(domain: str) -> str:
    """The domain in its DNS (A-label) form, by the rules the SMS domains are read with
    (`bridge.domains`: UTS 46, IDNA2008): `straße.example` is `xn--strae-oqa.example`, not
    `strasse.example` (IDNA2003's reading, a different domain). An ASCII name or address,
    or a name IDNA cannot write, as it is."""
    if domain.isascii():
        return domain
    try:
        return address_domain(domain)
    except DomainError:
        return domain


def names_match(names: Sequence[str], patterns: Sequence[str]) -> bool:
    """Does a certificate carrying DNS `names` match one of `patterns`?

    A pattern `example.com` matches that name; `.example.com` matches any name below it.
    A certificate name `*.example.com` (a wildcard in the left-most label only) stands for
    every single-label name below example.com.
    """
    for raw in names:
        name = raw.lower().rstrip(".")
        for pattern in patterns:
            if pattern.startswith("."):
                parent = pattern[1:]
                if name.endswith(pattern) or (
                    name.startswith("*.") and (name[2:] == parent or name[1:].endswith(pattern))
                ):
                    return True
            elif name == pattern or (
                name.startswith("*.") and "." in pattern and pattern.split(".", 1)[1] == name[2:]
            ):
                return True
    return False
