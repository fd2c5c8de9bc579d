"""The SSRF guard: which push URLs may be connected to, and the vetted address to pin.

A push URL must be `https` (or `http` when allowed), name a host in ordinary form (no
decimal, octal or hex IPv4 tricks such as `2130706433` or `0x7f.1`), and resolve only to
global addresses: loopback, private (RFC 1918, ULA), link-local (169.254.169.254, the
cloud metadata address), CGNAT, multicast, reserved and documentation ranges are
refused, unless the host is explicitly allowed. The decision is taken on the address
the socket will really reach: every IPv6 form that embeds or stands for an IPv4 address
(IPv4-mapped, IPv4-compatible `::a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d`, 6to4,
Teredo, local-use NAT64 `64:ff9b:1::/48`) and deprecated site-local `fec0::/10` are
refused outright; the well-known NAT64 prefix `64:ff9b::/96` (what a DNS64 resolver
answers for an IPv4-only host) is judged by the IPv4 address it embeds. The tables are
explicit, not Python's `is_global` alone (whose tables differ between versions).
The caller connects to the returned address literally (pinned: no second DNS answer
can rebind it) and never follows redirects.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

from bridge.push.url import PushBlocked, parse_target

_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata", "instance-data"})
# getaddrinfo's answers that say the name has no address (NXDOMAIN, no A/AAAA records);
# any other failure (EAI_AGAIN: the resolver is down or timed out) is temporary.
_NO_SUCH_HOST = frozenset({socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)})


@dataclass(frozen=True, slots=True)
class Vetted:
    scheme: str
    host: str
    port: int
    address: str  # the IP to connect to
    path: str  # path and query


_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
_NAT64 = _V6("64:ff9b::/96")  # RFC 6052 well-known prefix: judged by the embedded IPv4
# IPv6 forms refused whatever they contain: they reach IPv4 (or a local net) by a path
# the check cannot follow, or are deprecated.
_REFUSED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/96"), "an IPv4-compatible (deprecated) or unspecified/loopback address"),
    (_V6("::ffff:0:0/96"), "an IPv4-mapped address"),
    (_V6("::ffff:0:0:0/96"), "an IPv4-translated address"),
    (_V6("64:ff9b:1::/48"), "a local-use NAT64 address"),
    (_V6("100::/64"), "a discard-only address"),
    (_V6("2001::/23"), "an IETF protocol address (Teredo 2001::/32 among them)"),
    (_V6("2001:db8::/32"), "a documentation address"),
    (_V6("2002::/16"), "a 6to4 address"),
    (_V6("3fff::/20"), "a documentation address"),
    (_V6("5f00::/16"), "a segment-routing address"),
    (_V6("fc00::/7"), "a unique-local (private) address"),
    (_V6("fe80::/10"), "a link-local address"),
    (_V6("fec0::/10"), "a site-local (deprecated) address"),
    (_V6("ff00::/8"), "a multicast address"),
)
_REFUSED_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/8"), "a 'this network' address"),
    (_V4("10.0.0.0/8"), "a private address"),
    (_V4("100.64.0.0/10"), "a shared (CGNAT) address"),
    (_V4("127.0.0.0/8"), "a loopback address"),
    (_V4("169.254.0.0/16"), "a link-local (cloud metadata) address"),
    (_V4("172.16.0.0/12"), "a private address"),
    (_V4("192.0.0.0/24"), "an IETF protocol address"),
    (_V4("192.0.2.0/24"), "a documentation address"),
    (_V4("192.88.99.0/24"), "a 6to4 relay address"),
    (_V4("192.168.0.0/16"), "a private address"),
    (_V4("198.18.0.0/15"), "a benchmarking address"),
    (_V4("198.51.100.0/24"), "a documentation address"),
    (_V4("203.0.113.0/24"), "a documentation address"),
    (_V4("224.0.0.0/4"), "a multicast address"),
    (_V4("240.0.0.0/4"), "a reserved or broadcast address"),
)


__all__ = ["PushBlocked", "Vetted", "check_address", "effective_address", "parse_target", "vet"]


def effective_address(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address a connection to `address` really reaches, or PushBlocked.

    IPv6 forms that embed IPv4 are refused, except NAT64 `64:ff9b::/96`, which stands
    for the IPv4 address in its last 32 bits."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise PushBlocked(f"{address!r} is not an IP address") from None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            raise PushBlocked(f"address {address} has a scope (a link-local address)")
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        for net, what in _REFUSED_V6:
            if ip in net:
                raise PushBlocked(f"address {address} is {what}")
    return ip


def check_address(address: str) -> str:
    """Refuse any address whose real destination is not globally routable; return the
    address in canonical form (the one to connect to)."""
    real = effective_address(address)
    via = "" if str(real) == address else f" (reaches {real})"
    if isinstance(real, ipaddress.IPv4Address):
        for net4, what in _REFUSED_V4:
            if real in net4:
                raise PushBlocked(f"address {address}{via} is {what}")
    if not real.is_global or real.is_multicast:
        raise PushBlocked(f"address {address}{via} is not a public address")
    return str(ipaddress.ip_address(address))


async def vet(url: str, *, allow_hosts: tuple[str, ...] = (), allow_http: bool = False) -> Vetted:
    """Check `url` and resolve its host to one permitted address, or raise PushBlocked.

    A name the DNS says does not exist is refused (PushBlocked); a lookup that could not
    be answered (the resolver down) raises `socket.gaierror`, a temporary fault."""
    scheme, host, port, path = parse_target(url, allow_http)
    allowed = host in {h.lower() for h in allow_hosts}
    if host in _METADATA_NAMES and not allowed:
        raise PushBlocked(f"host {host!r} is a cloud metadata service")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except socket.gaierror as exc:
        if exc.errno in _NO_SUCH_HOST:  # the DNS says the name does not exist
            raise PushBlocked(f"cannot resolve {host!r}: {exc.strerror}") from None
        raise  # the resolver did not answer (EAI_AGAIN, …): a temporary fault, tried again
    answers = sorted({str(info[4][0]) for info in infos})
    if not answers:
        raise PushBlocked(f"{host!r} has no address")
    if allowed:
        addresses = [str(ipaddress.ip_address(a)) for a in answers]
    else:  # every answer must be public: no mixed rebinding sets
        addresses = [check_address(a) for a in answers]
    return Vetted(scheme, host, port, addresses[0], path)
