"""Who may connect and how: client networks, TLS requirements, connection caps and rates.

`Networks` answers "is this address in one of these CIDR blocks"; `ConnectionLimiter`
counts open connections and new connections per minute per client address; and
`CustomerAccess` reads a customer's access rules (allowed client networks, TLS
required, which destination kinds are refused) from its settings.
"""

from __future__ import annotations

import ipaddress
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Networks:
    def __init__(self, cidrs: Iterable[str]) -> None:
        self.networks: tuple[IpNetwork, ...] = tuple(
            ipaddress.ip_network(c.strip(), strict=False) for c in cidrs
        )

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str) or not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)


def check_cidrs(values: Iterable[str]) -> tuple[str, ...]:
    """Validate CIDR strings; raise ValueError naming the bad one."""
    out = []
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IP network (e.g. 10.0.0.0/8): {exc}") from None
        out.append(value)
    return tuple(out)


class ConnectionLimiter:
    """Open connections and connection rate per client address (and in total)."""

    def __init__(self, per_ip: int, per_ip_per_minute: int, total: int) -> None:
        self.per_ip = per_ip
        self.per_ip_per_minute = per_ip_per_minute
        self.total = total
        self.open: dict[str, int] = defaultdict(int)
        self.recent: dict[str, deque[float]] = defaultdict(deque)
        self.open_total = 0

    def admit(self, ip: str, now: float | None = None) -> str | None:
        """Register a new connection, or return why it is refused."""
        now = time.monotonic() if now is None else now
        if self.open_total >= self.total:
            return "too many connections in total"
        if self.open[ip] >= self.per_ip:
            return f"too many connections from {ip}"
        recent = self.recent[ip]
        while recent and recent[0] <= now - 60.0:
            recent.popleft()
        if len(recent) >= self.per_ip_per_minute:
            return f"too many new connections from {ip} per minute"
        recent.append(now)
        self.open[ip] += 1
        self.open_total += 1
        return None

    def release(self, ip: str) -> None:
        self.open[ip] -= 1
        self.open_total -= 1
        if self.open[ip] <= 0:
            del self.open[ip]
            if not self.recent.get(ip):
                self.recent.pop(ip, None)


@dataclass(frozen=True, slots=True)
class CustomerAccess:
    """A customer's access rules, from the `access` table of its settings."""

    networks: tuple[str, ...] = ()  # client networks allowed to send (empty: any)
    require_tls: bool = False  # refuse MAIL over a plaintext session
    premium: bool = False  # allow premium-rate / shared-cost destinations
    short_codes: bool = False  # allow short codes as destinations
    sequential_run: int = 5  # refuse a mail to this many consecutive numbers (0: off)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> CustomerAccess:
        raw = settings.get("access") or {}
        if not isinstance(raw, Mapping):
            raise ValueError("access: expected a table")
        unknown = set(raw) - {"networks", "require_tls", "premium", "short_codes", "sequential_run"}
        if unknown:
            raise ValueError(f"access: unknown keys {sorted(unknown)}")
        return cls(
            networks=check_cidrs(raw.get("networks", ())),
            require_tls=bool(raw.get("require_tls", False)),
            premium=bool(raw.get("premium", False)),
            short_codes=bool(raw.get("short_codes", False)),
            sequential_run=int(raw.get("sequential_run", 5)),
        )
