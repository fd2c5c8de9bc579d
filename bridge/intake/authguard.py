"""AUTH brute-force guard: failed logins counted per client address and per login, across sessions.

Each failure within `window` seconds counts against the client's address (an IPv6
address: its /64, `access.client_block`) and against the login it tried. The n-th
failure is answered after a delay that doubles with n (`delay`, 2 × `delay`, … up to
`delay_max`); at `max_failures` (per address) or `max_failures_per_login` (per login)
the address or login is locked for `lockout` seconds, and while locked every AUTH is
refused before any password is checked.
Verifications still running count as failures until they end, so parallel sessions
cannot get more guesses than the limit.

The counters live in this process's memory: with several bridge instances an attacker
who reaches all of them gets up to (instances × limit) guesses per lockout period
(see docs/security.md). Pure code: the caller passes the time.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from bridge.intake.access import client_block


@dataclass
class _Counter:
    failures: deque[float] = field(default_factory=deque)
    running: int = 0
    locked_until: float = 0.0


@dataclass(frozen=True, slots=True)
class Lockout:
    """Why AUTH is refused now, and for how long."""

    subject: str  # "address" or "login"
    seconds: float
    started: bool = False  # this attempt started the lockout (log it once)


@dataclass(frozen=True, slots=True)
class AuthLimits:
    max_failures: int = 10
    max_failures_per_login: int = 20
    window: float = 600.0
    lockout: float = 900.0
    delay: float = 0.5
    delay_max: float = 8.0


class AuthGuard:
    def __init__(self, limits: AuthLimits, max_keys: int = 10_000) -> None:
        self.limits = limits
        self.max_keys = max_keys
        self._counters: OrderedDict[tuple[str, str], _Counter] = OrderedDict()

    def _counter(self, subject: str, key: str, now: float) -> _Counter:
        counter = self._counters.get((subject, key))
        if counter is None:
            counter = self._counters[(subject, key)] = _Counter()
            while len(self._counters) > self.max_keys:
                self._evict_one()
        self._counters.move_to_end((subject, key))
        while counter.failures and counter.failures[0] <= now - self.limits.window:
            counter.failures.popleft()
        return counter

    def _evict_one(self) -> None:
        # The least recently used counter that no verification is using right now.
        for key, counter in self._counters.items():
            if counter.running == 0:
                del self._counters[key]
                return
        self._counters.popitem(last=False)

    def _pairs(self, ip: str, login: str, now: float) -> list[tuple[str, _Counter, int]]:
        return [
            ("address", self._counter("address", client_block(ip), now), self.limits.max_failures),
            ("login", self._counter("login", login, now), self.limits.max_failures_per_login),
        ]

    def begin(self, ip: str, login: str, now: float) -> Lockout | None:
        """Start an attempt (then call `end`), or the lockout that refuses it."""
        pairs = self._pairs(ip, login, now)
        for subject, counter, _ in pairs:
            if counter.locked_until > now:
                return Lockout(subject, counter.locked_until - now)
        for subject, counter, limit in pairs:
            if len(counter.failures) + counter.running >= limit:
                # Running verifications would reach the limit: refuse without a lockout.
                return Lockout(subject, 60.0)
        for _, counter, _ in pairs:
            counter.running += 1
        return None

    def end(self, ip: str, login: str, now: float, *, ok: bool) -> tuple[float, Lockout | None]:
        """Finish an attempt: (seconds to delay the answer, a lockout it started or None)."""
        pairs = self._pairs(ip, login, now)
        for _, counter, _ in pairs:
            counter.running = max(0, counter.running - 1)
        if ok:
            return 0.0, None
        started: Lockout | None = None
        worst = 0
        for subject, counter, limit in pairs:
            counter.failures.append(now)
            worst = max(worst, len(counter.failures))
            if len(counter.failures) >= limit and counter.locked_until <= now:
                counter.locked_until = now + self.limits.lockout
                started = started or Lockout(subject, self.limits.lockout, started=True)
        delay = min(self.limits.delay * 2 ** (worst - 1), self.limits.delay_max)
        return delay, started
