"""Routes: which transports a destination number uses, in failover order.

Pure code. The routes are an ordered prefix table; the first route whose prefix the
number starts with wins, and the last route (prefix "") is the default. `check_routes`
validates the table at start: digits only, default last, every transport known, and no
route hidden behind an earlier, shorter prefix (it could never be chosen).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from bridge.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Route:
    prefix: str
    transports: tuple[str, ...]

    @property
    def digits(self) -> str:
        return self.prefix.lstrip("+")


class RouteError(ConfigError, ValueError):
    """The route table cannot work as written (the message names the route)."""


def choose(msisdn: str, routes: Sequence[Route]) -> tuple[str, ...]:
    """The transports for `msisdn` (E.164 with '+'; prefixes may be written with or without '+')."""
    digits = msisdn.lstrip("+")
    for route in routes:
        if digits.startswith(route.digits):
            return route.transports
    return ()


def check_routes(routes: Sequence[Route], transports: Collection[str]) -> None:
    """Raise RouteError unless the table is usable as an ordered prefix table."""
    if not routes or routes[-1].digits != "":
        raise RouteError('the last route must have prefix "" (the default route)')
    for i, route in enumerate(routes):
        if route.digits and not (route.digits.isascii() and route.digits.isdigit()):
            raise RouteError(f"route {route.prefix!r}: a prefix is digits, optionally after '+'")
        if not route.transports:
            raise RouteError(f"route {route.prefix!r} names no transport")
        unknown = [t for t in route.transports if t not in transports]
        if unknown:
            raise RouteError(f"route {route.prefix!r} names unknown transports {unknown}")
        for earlier in routes[:i]:
            if route.digits.startswith(earlier.digits):
                raise RouteError(
                    f"route {route.prefix!r} can never match: route {earlier.prefix!r} "
                    "comes first and covers it (put longer prefixes first)"
                )
