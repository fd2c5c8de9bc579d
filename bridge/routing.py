"""Routes: which transports a destination number uses, in failover order.

Pure code. The routes are an ordered prefix table; the first route whose prefix the
number starts with wins, and the last route (prefix "") is the default; settings
validation guarantees it exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Route:
    prefix: str
    transports: tuple[str, ...]


def choose(msisdn: str, routes: Sequence[Route]) -> tuple[str, ...]:
    """The transports for `msisdn` (E.164 with '+'; prefixes may be written with or without '+')."""
    digits = msisdn.lstrip("+")
    for route in routes:
        if digits.startswith(route.prefix.lstrip("+")):
            return route.transports
    return ()
