"""Who may connect and send how: client networks, TLS and AUTH rules, connection caps and rates.

`Networks` answers "is this address in one of these CIDR blocks"; `ConnectionLimiter`
counts open connections and new connections per minute per client address;
`CustomerAccess` reads a customer's access rules (client networks, TLS and AUTH
required, which destination kinds are refused, SMS pumping limits) from its settings;
`check_client` decides at MAIL whether a client may send for a sender of a customer,
and `exposure` says when a customer's rules leave it open to the world (or closed).

The model: a customer's users may send from its client networks AND, if it requires
AUTH or has no client networks, only after AUTH with a login of that customer. A
customer with neither client networks nor a login cannot send at all.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bridge.errors import Reject
from bridge.intake.counts import CountTable, TableBusy, TableFull

log = logging.getLogger("bridge.intake")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Networks:
    def __init__(self, cidrs: Iterable[str]) -> None:
        self.networks: tuple[IpNetwork, ...] = tuple(
            ipaddress.ip_network(c.strip(), strict=False) for c in cidrs
        )

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str) or not self.networks:
            return False
        ip = client_address(address)
        return ip is not None and any(ip in net for net in self.networks)

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


def client_address(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A client's address as the doors judge it: an IPv6 zone (`fe80::1%eth0`) set aside,
    an IPv4-mapped IPv6 address (a dual-stack socket's IPv4 client) as the IPv4 address;
    None for what is no address at all."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@lru_cache(maxsize=4096)
def client_block(ip: str) -> str:
    """What a client's address is counted under, by every door's per-address limit: an
    IPv4 address as itself, an IPv6 address by its /64 — the block a site, often a single
    host, is given, any address of which it may use, so that counting single IPv6
    addresses would let one client spread its connections and guesses over 2**64 of
    them. An IPv4-mapped IPv6 address counts as the IPv4 address; anything else (no
    address at all) as written."""
    address = client_address(ip)
    if address is None:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class ConnectionLimiter:
    """Open connections and connection rate per client address (IPv6: per /64, see
    `client_block`) and in total, counted in `table` (`bridge/intake/counts.py`: shared
    by the processes of a bridge when made shared (`CountTable.make`); by default this
    process's own)."""

    def __init__(
        self, per_ip: int, per_ip_per_minute: int, total: int, table: CountTable | None = None
    ) -> None:
        self.per_ip = per_ip
        self.per_ip_per_minute = per_ip_per_minute
        self.total = total
        self.table = table or limiter_table(total)

    def admit(self, ip: str, now: float | None = None) -> str | None:
        """Register a new connection, or return why it is refused."""
        now = time.monotonic() if now is None else now
        block = client_block(ip)
        where = ip if block == ip else f"{ip} (counted with its {block})"
        try:
            with self.table.locked() as table:
                if table.total() >= self.total:
                    return "too many connections in total"
                slot = table.find(block, now)
                assert slot is not None
                if table.held(slot) >= self.per_ip:
                    return f"too many connections from {where}"
                if table.count(slot, now) >= self.per_ip_per_minute:
                    return f"too many new connections from {where} per minute"
                table.add_time(slot, now)
                table.add_held(slot, 1)
                table.add_total(1)
                return None
        except (TableBusy, TableFull) as exc:
            return f"{exc} (a connection from {where})"

    def release(self, ip: str, now: float | None = None) -> None:
        """A connection `admit` let in has ended."""
        now = time.monotonic() if now is None else now
        try:
            with self.table.locked() as table:
                slot = table.find(client_block(ip), now, create=False)
                if slot is not None:
                    table.add_held(slot, -1)
                table.add_total(-1)
        except TableBusy as exc:  # counted as open until the bridge restarts: said, not hidden
            log.error("the end of a connection from %s was not counted: %s", ip, exc)

    @property
    def open_total(self) -> int:
        """The connections open in all (every process's, with a shared table)."""
        with self.table.locked() as table:
            return table.total()

    def open(self, ip: str) -> int:
        """The connections open from `ip`'s block (every process's, with a shared table)."""
        with self.table.locked() as table:
            slot = table.find(client_block(ip), time.monotonic(), create=False)
            return 0 if slot is None else table.held(slot)


def limiter_table(total: int, *, shared: bool = False) -> CountTable:
    """A `ConnectionLimiter`'s table: room for four times the connections allowed open
    (a client's times are kept for a minute after it left), at least 1,024 clients.
    `shared`: for the processes forked after it (`CountTable.make`)."""
    return CountTable.make(max(1024, 4 * total), 60.0, shared=shared)


# Calling codes of countries SMS pumping (IRSF) traffic often goes to (the list of
# countries a large SMS provider keeps behind an extra switch): BD, IL, NG, PK, PS,
# LK, AZ, TJ, OM, TN, DZ. A customer may replace it (`watch_prefixes`).
WATCH_PREFIXES = (
    "+880", "+972", "+234", "+92", "+970", "+94", "+994", "+992", "+968", "+216", "+213",
)  # fmt: skip
_ACCESS_KEYS = frozenset(
    {
        "networks",
        "require_tls",
        "require_auth",
        "premium",
        "short_codes",
        "sequential_run",
        "velocity_window",
        "velocity_numbers",
        "velocity_suffix_digits",
        "watch_prefixes",
        "watch_numbers",
    }
)


@dataclass(frozen=True, slots=True)
class CustomerAccess:
    """A customer's access rules, from the `access` table of its settings."""

    networks: tuple[str, ...] = ()  # client networks allowed to send (empty: AUTH only)
    require_tls: bool = False  # refuse MAIL over a plaintext session
    require_auth: bool = False  # AUTH needed even from the client networks
    premium: bool = False  # allow premium-rate / shared-cost destinations
    short_codes: bool = False  # allow short codes as destinations
    sequential_run: int = 5  # refuse a mail to this many consecutive numbers (0: off)
    # SMS pumping across mails: orders are held for review when, within velocity_window
    # seconds, more than velocity_numbers distinct numbers share one prefix (the number
    # without its last velocity_suffix_digits digits), or more than watch_numbers
    # distinct numbers start with one of watch_prefixes. 0 turns a check off.
    velocity_window: float = 600.0
    velocity_numbers: int = 25
    velocity_suffix_digits: int = 3
    watch_prefixes: tuple[str, ...] = WATCH_PREFIXES
    watch_numbers: int = 5

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> CustomerAccess:
        raw = settings.get("access") or {}
        if not isinstance(raw, Mapping):
            raise ValueError("access: expected a table")
        unknown = set(raw) - _ACCESS_KEYS
        if unknown:
            raise ValueError(f"access: unknown keys {sorted(unknown)}")
        watch = tuple(str(p) for p in raw.get("watch_prefixes", WATCH_PREFIXES))
        for prefix in watch:
            if not (prefix.startswith("+") and prefix[1:].isascii() and prefix[1:].isdigit()):
                raise ValueError(f"access: watch_prefixes: {prefix!r} is not like '+234'")
        access = cls(
            networks=check_cidrs(raw.get("networks", ())),
            require_tls=bool(raw.get("require_tls", False)),
            require_auth=bool(raw.get("require_auth", False)),
            premium=bool(raw.get("premium", False)),
            short_codes=bool(raw.get("short_codes", False)),
            sequential_run=int(raw.get("sequential_run", 5)),
            velocity_window=float(raw.get("velocity_window", 600.0)),
            velocity_numbers=int(raw.get("velocity_numbers", 25)),
            velocity_suffix_digits=int(raw.get("velocity_suffix_digits", 3)),
            watch_prefixes=watch,
            watch_numbers=int(raw.get("watch_numbers", 5)),
        )
        if not 1 <= access.velocity_window <= 86_400:
            raise ValueError("access: velocity_window: expected 1 to 86400 seconds")
        if not 1 <= access.velocity_suffix_digits <= 6:
            raise ValueError("access: velocity_suffix_digits: expected 1 to 6")
        if min(access.velocity_numbers, access.watch_numbers, access.sequential_run) < 0:
            raise ValueError("access: velocity_numbers, watch_numbers, sequential_run: >= 0")
        return access


@dataclass(frozen=True, slots=True)
class Client:
    """What MAIL knows about the client: its address, TLS, and the customer AUTH proved."""

    ip: str
    tls: bool
    auth_customer_id: int | None


def check_client(access: CustomerAccess, client: Client, customer_id: int, sender: str) -> None:
    """Reject unless `client` may send for `sender` of customer `customer_id`.

    The same rules hold whatever the client greeted with (HELO or EHLO).
    """
    if client.auth_customer_id is not None and client.auth_customer_id != customer_id:
        raise Reject("not_your_account", sender=sender)
    if access.networks and not client_in(access.networks, client.ip):
        raise Reject("client_not_allowed", ip=client.ip, sender=sender)
    if access.require_tls and not client.tls:
        raise Reject("tls_required")
    if (access.require_auth or not access.networks) and client.auth_customer_id is None:
        raise Reject("auth_required", sender=sender)


@lru_cache(maxsize=256)
def networks_of(cidrs: tuple[str, ...]) -> Networks:
    return Networks(cidrs)


@lru_cache(maxsize=4096)
def client_in(cidrs: tuple[str, ...], ip: str) -> bool:
    """`ip in networks_of(cidrs)`, remembered: a client (a connection kept open, a relay)
    sends many mails, and reading the address and testing each network costs per MAIL."""
    return ip in networks_of(cidrs)


def _world_wide(cidr: str) -> bool:
    """A network so wide that it is "anyone on the internet" (e.g. 0.0.0.0/0, ::/0)."""
    net = ipaddress.ip_network(cidr, strict=False)
    wide = net.prefixlen < (8 if net.version == 4 else 16)
    return wide and not (net.is_private or net.is_loopback)


def exposure(access: CustomerAccess, logins: int) -> str | None:
    """A warning when the rules leave the customer open to the world, or unable to send."""
    if access.networks and not access.require_auth:
        wide = [n for n in access.networks if _world_wide(n)]
        if wide:
            return (
                f"open to the world: its client networks include {', '.join(wide)} and AUTH "
                "is not required, so anyone who knows a user's address can send SMS as that "
                "user; narrow the networks or set require_auth"
            )
    if not access.networks and logins == 0:
        return (
            "has no client networks and no login, so its users cannot send; add its mail "
            "servers' networks (mailsms customer access NAME --network CIDR) or a login "
            "(mailsms login add LOGIN --customer NAME)"
        )
    return None
