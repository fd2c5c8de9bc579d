"""Throughput limits: token buckets (msgs/s with a burst), the pause on throttling, sender rates.

Pure: the clock is passed in. `TokenBucket.reserve(now)` books the next token and returns
how long the caller must wait before sending (GCRA / virtual scheduling, O(1));
`take(now)` takes one only if it is there now; a rate of 0 means unlimited.
`ThrottlePause` is the bind's answer to ESME_RTHROTTLED / ESME_RMSGQFUL: pause, doubling
on every further throttle up to a ceiling, reset by the next success. The answers that
arrive while paused belong to requests sent before the pause began (nothing is sent
while paused): a full window refused for one burst is one pause, not ten doublings.
`SenderRates` / `SenderBuckets`: the sending rate of each sender id (a long code about
1 SMS/s, short codes and alphanumeric senders as contracted), which dispatch applies.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from bridge.smpp import constants as c
from bridge.smpp.address import source_address


class TokenBucket:
    """`rate` tokens per second, at most `burst` at once."""

    __slots__ = ("_tat", "burst", "rate")

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self._tat = 0.0  # theoretical arrival time of the next token

    def wait(self, now: float) -> float:
        """The seconds until a token is there, taking none (0 when one is there now)."""
        if self.rate <= 0:
            return 0.0
        interval = 1.0 / self.rate
        return max(0.0, max(self._tat, now) - (self.burst - 1.0) * interval - now)

    def reserve(self, now: float) -> float:
        """Take one token; the seconds to wait before using it (0 when available now)."""
        if self.rate <= 0:
            return 0.0
        interval = 1.0 / self.rate
        tat = max(self._tat, now)
        self._tat = tat + interval
        return max(0.0, tat - (self.burst - 1.0) * interval - now)

    def taken_at(self) -> float:
        """Where the bucket stands; `restore` gives back every token taken since."""
        return self._tat

    def restore(self, mark: float) -> None:
        """Back to `mark` (a `taken_at`): the tokens taken since are there again."""
        self._tat = mark

    def take(self, now: float) -> bool:
        """Take one token if one is there now; else take none and say so (a caller that
        refuses rather than waits: an SMPP account over its throughput, a login rate)."""
        if self.rate <= 0:
            return True
        interval = 1.0 / self.rate
        tat = max(self._tat, now)
        if tat - (self.burst - 1.0) * interval > now:
            return False
        self._tat = tat + interval
        return True


@dataclass(slots=True)
class ThrottlePause:
    """Doubling pause after throttling answers; `until` is when sending may resume."""

    minimum: float = 1.0
    maximum: float = 60.0
    until: float = 0.0
    current: float = 0.0

    def throttled(self, now: float) -> float:
        """Record one throttling answer; how long sending stays paused from `now`.

        The first throttle after sending resumed starts a pause (twice the last, at
        least `minimum`, at most `maximum`); one that comes while paused answers a
        request sent before that pause and only gets what is left of it."""
        if now < self.until:
            return self.until - now
        self.current = min(self.maximum, max(self.minimum, self.current * 2))
        self.until = now + self.current
        return self.current

    def succeeded(self) -> None:
        self.current = 0.0

    def remaining(self, now: float) -> float:
        return max(0.0, self.until - now)


@dataclass(frozen=True, slots=True)
class SenderRates:
    """Submits per second one sender id may make on one SMSC (0 = no limit of its own).

    By the kind of sender (a long code, i.e. a full number; a short code; an alphanumeric
    name), unless `per_sender` names the sender id itself (written as it is configured;
    `+49…`, `0049…` and `49…` are the same number).
    """

    long_code: float = 1.0
    short_code: float = 0.0
    alphanumeric: float = 0.0
    per_sender: tuple[tuple[str, float], ...] = ()

    def rate_for(self, sender: str) -> float:
        return _rate_for(self, sender)


@functools.lru_cache(maxsize=4096)
def _rate_for(rates: SenderRates, sender: str) -> float:
    """`SenderRates.rate_for`, computed once per sender id (dispatch asks for every order)."""
    key = sender_key(sender)
    for name, rate in rates.per_sender:
        if sender_key(name) == key:
            return rate
    address = source_address(sender)
    if address.ton == c.TON_ALPHANUMERIC:
        return rates.alphanumeric
    if address.ton == c.TON_INTERNATIONAL:
        return rates.long_code
    return rates.short_code


def sender_key(sender: str) -> str:
    """One spelling per sender id: numbers as their digits, names as written."""
    address = source_address(sender)
    return address.addr if address.ton != c.TON_ALPHANUMERIC else sender.strip()


class SenderBuckets:
    """One token bucket per (transport, sender id), at the rate its `SenderRates` give.

    `reserve` books the sender's next token and returns how long to wait for it, so
    orders of one sender leave in the order they asked, at its rate, while every other
    sender's orders are not delayed at all.
    """

    __slots__ = ("_buckets",)

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def reserve(self, transport: str, sender: str, rates: SenderRates, now: float) -> float:
        rate = rates.rate_for(sender)
        if rate <= 0:
            return 0.0
        key = (transport, sender_key(sender))
        bucket = self._buckets.get(key)
        if bucket is None or bucket.rate != rate:
            bucket = self._buckets[key] = TokenBucket(rate)
        return bucket.reserve(now)
