"""MX lookup for the mailer (RFC 5321 §5.1, RFC 7505) with dnspython's asyncio resolver.

`mx_targets(resolver, domain)` gives the hosts to try, best preference first (hosts of
equal preference in random order), each with its addresses (A, then AAAA), looked up
with the same resolver. No MX record: the domain itself (implicit MX). A domain that
does not exist or publishes a null MX ("accepts no mail") is a permanent failure
(`DnsPermanentFailure`); a DNS server failure or timeout is temporary
(`DnsTemporaryFailure`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdtypes.ANY.MX
import dns.resolver

from bridge.errors import BridgeError, PermanentFailure, TemporaryFailure

MAX_ADDRESSES = 5  # addresses tried per delivery (Postfix: smtp_mx_address_limit)


class DnsFailure(BridgeError):
    """The MX lookup failed: one of the two below."""


class DnsTemporaryFailure(DnsFailure, TemporaryFailure):
    """A DNS server failed or timed out, or no mail host could be looked up: try later."""


class DnsPermanentFailure(DnsFailure, PermanentFailure):
    """The name does not exist, or the domain accepts no mail (null MX)."""


@dataclass(frozen=True, slots=True)
class Target:
    """One MX host (its name, for TLS) and one of its addresses."""

    host: str
    address: str


def make_resolver(servers: Sequence[str], timeout: float) -> dns.asyncresolver.Resolver:
    """The system's resolver (/etc/resolv.conf), or one asking `servers` ("ip" or "ip:port")."""
    if not servers:
        resolver = dns.asyncresolver.Resolver()
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [_nameserver(s) for s in servers]
    resolver.lifetime = timeout
    resolver.timeout = min(timeout, 5.0)
    return resolver


def _nameserver(spec: str) -> dns.nameserver.Nameserver:
    text = spec.strip()
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif text.count(":") == 1:
        address, _, port_text = text.partition(":")
        port = int(port_text)
    else:
        address, port = text, 53
    return dns.nameserver.Do53Nameserver(address, port)


async def _query(
    resolver: dns.asyncresolver.Resolver, name: str, rdtype: str
) -> dns.resolver.Answer | None:
    """The answer, or None when the name exists without records of this type."""
    try:
        return await resolver.resolve(name, rdtype, search=False)
    except dns.resolver.NoAnswer:
        return None
    except dns.resolver.NXDOMAIN as exc:
        raise DnsPermanentFailure(f"{name}: no such domain in DNS") from exc
    except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
        raise DnsTemporaryFailure(f"{name}: DNS lookup of {rdtype} failed: {exc}") from exc
    except dns.exception.DNSException as exc:
        raise DnsTemporaryFailure(f"{name}: DNS lookup of {rdtype} failed: {exc}") from exc


async def mx_hosts(resolver: dns.asyncresolver.Resolver, domain: str) -> list[str]:
    """The domain's mail hosts, best first; the domain itself when it has no MX."""
    answer = await _query(resolver, domain, "MX")
    if answer is None:
        return [domain]
    records = [r for r in answer if isinstance(r, dns.rdtypes.ANY.MX.MX)]
    if len(records) == 1 and records[0].exchange == dns.name.root:
        raise DnsPermanentFailure(f"{domain} accepts no mail (null MX, RFC 7505)")
    by_preference: dict[int, list[str]] = {}
    for r in records:
        if r.exchange != dns.name.root:
            by_preference.setdefault(r.preference, []).append(r.exchange.to_text(True).lower())
    hosts: list[str] = []
    for preference in sorted(by_preference):
        group = by_preference[preference]
        random.shuffle(group)
        hosts.extend(group)
    if not hosts:
        raise DnsPermanentFailure(f"{domain} accepts no mail (null MX, RFC 7505)")
    return hosts


async def addresses(resolver: dns.asyncresolver.Resolver, host: str) -> list[str]:
    """The host's IPv4 then IPv6 addresses ([] when it has none)."""
    found: list[str] = []
    for rdtype in ("A", "AAAA"):
        try:
            answer = await _query(resolver, host, rdtype)
        except DnsPermanentFailure:
            return found  # the MX host name does not exist: try the next host
        except DnsFailure:
            if found:
                break
            raise
        if answer is not None:
            found.extend(r.to_text() for r in answer)
    return found


async def mx_targets(resolver: dns.asyncresolver.Resolver, domain: str) -> list[Target]:
    """Up to MAX_ADDRESSES (host, address) pairs to try in order; DnsTemporaryFailure if none."""
    targets: list[Target] = []
    errors: list[str] = []
    for host in await mx_hosts(resolver, domain):
        try:
            found = await addresses(resolver, host)
        except DnsFailure as exc:
            errors.append(str(exc))
            continue
        if not found:
            errors.append(f"{host}: no address in DNS")
        targets.extend(Target(host, a) for a in found)
        if len(targets) >= MAX_ADDRESSES:
            break
    if not targets:
        raise DnsTemporaryFailure(f"no reachable mail host for {domain}: {'; '.join(errors)}")
    return targets[:MAX_ADDRESSES]
