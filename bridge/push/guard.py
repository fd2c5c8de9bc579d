"""The SSRF guard: which push URLs may be connected to, and the vetted address to pin.

A push URL must be `https` (or `http` when allowed), name a host in ordinary form (no
decimal, octal or hex IPv4 tricks such as `2130706433` or `0x7f.1`), and resolve only to
global addresses: loopback, private (RFC 1918, ULA), link-local (169.254.169.254, the
cloud metadata address), CGNAT, multicast, reserved and IPv4-mapped forms are refused,
unless the host is explicitly allowed. The caller connects to the returned address
(pinned, so a second DNS answer cannot rebind it) and never follows redirects.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

_IPV4_ODD = re.compile(r"^(0x[0-9a-f]+|\d+)(\.(0x[0-9a-f]+|\d+)){0,3}$", re.IGNORECASE)
_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata", "instance-data"})


class PushBlocked(ValueError):
    """The URL is refused by the SSRF guard; the message says why."""


@dataclass(frozen=True, slots=True)
class Vetted:
    scheme: str
    host: str
    port: int
    address: str  # the IP to connect to
    path: str  # path and query


def _is_dotted_quad(host: str) -> bool:
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() and str(int(p)) == p for p in parts)


def check_address(address: str) -> None:
    """Refuse any address that is not globally routable (or is mapped/embedded IPv4)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            raise PushBlocked(f"address {address} embeds IPv4 {embedded}")
    if not ip.is_global or ip.is_multicast:
        raise PushBlocked(f"address {address} is not a public address")


def parse_target(url: str, allow_http: bool) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme != "https" and not (allow_http and scheme == "http"):
        raise PushBlocked(f"scheme {scheme or '(none)'!r} not allowed; use https")
    if parts.username or parts.password:
        raise PushBlocked("credentials in the URL are not allowed; use auth settings")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise PushBlocked("the URL has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise PushBlocked(f"bad port: {exc}") from None
    if ":" not in host and _IPV4_ODD.fullmatch(host) and not _is_dotted_quad(host):
        raise PushBlocked(f"host {host!r} is a numeric address in an unusual form")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port, path


async def vet(url: str, *, allow_hosts: tuple[str, ...] = (), allow_http: bool = False) -> Vetted:
    """Check `url` and resolve its host to one permitted address, or raise PushBlocked."""
    scheme, host, port, path = parse_target(url, allow_http)
    allowed = host in {h.lower() for h in allow_hosts}
    if host in _METADATA_NAMES and not allowed:
        raise PushBlocked(f"host {host!r} is a cloud metadata service")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except OSError as exc:
        raise PushBlocked(f"cannot resolve {host!r}: {exc}") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    if not addresses:
        raise PushBlocked(f"{host!r} has no address")
    if not allowed:
        for address in addresses:  # every answer must be public: no mixed rebinding sets
            check_address(address)
    return Vetted(scheme, host, port, addresses[0], path)
