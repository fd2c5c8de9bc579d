"""AUTH brute-force guard: failed logins counted per client address and per login, across sessions.

Each failure within `window` seconds counts against the client's address (an IPv6
address: its /64, `access.client_block`) and against the login it tried. The n-th
failure is answered after a delay that doubles with n (`delay`, 2 × `delay`, … up to
`delay_max`); at `max_failures` (per address) or `max_failures_per_login` (per login)
the address or login is locked for `lockout` seconds, and while locked every AUTH is
refused before any password is checked.
Verifications still running count as failures until they end, so parallel sessions
cannot get more guesses than the limit.

The counts live in a `CountTable` (`bridge/intake/counts.py`): this process's own, or,
for the SMTP door of a bridge of several processes, one they all share (the limits hold
for the bridge, not per process). With several bridge instances an attacker who reaches
all of them gets up to (instances × limit) guesses per lockout period (see
docs/security.md). Pure code but for the table: the caller passes the time.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.intake.access import client_block
from bridge.intake.counts import CountTable, TableBusy, TableFull


@dataclass(frozen=True, slots=True)
class Lockout:
    """Why AUTH is refused now, and for how long."""

    # "address" or "login"; "busy": the counts could not be had (no room in the table for
    # a new client, or no turn at its lock in time): refused for now, nothing counted
    subject: str
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
    def __init__(
        self, limits: AuthLimits, max_keys: int = 10_000, table: CountTable | None = None
    ) -> None:
        """`max_keys`: the addresses and logins counted at once (the least recently used
        that holds no verification and no lockout gives way); `table`: one made by
        `guard_table` (shared by processes), else this process's own."""
        self.limits = limits
        self.table = table or guard_table(limits, max_keys)

    def _slots(
        self, table: CountTable, ip: str, login: str, now: float
    ) -> list[tuple[str, int, int]]:
        address = _slot(table, "address", client_block(ip), now)
        return [
            ("address", address, self.limits.max_failures),
            (
                "login",
                _slot(table, "login", login, now, keep=(address,)),
                self.limits.max_failures_per_login,
            ),
        ]

    def begin(self, ip: str, login: str, now: float) -> Lockout | None:
        """Start an attempt (then call `end`), or the lockout that refuses it."""
        try:
            with self.table.locked() as table:
                slots = self._slots(table, ip, login, now)
                for subject, slot, _ in slots:
                    until = table.locked_until(slot)
                    if until > now:
                        return Lockout(subject, until - now)
                for subject, slot, limit in slots:
                    if table.count(slot, now) + table.held(slot) >= limit:
                        # Running verifications would reach the limit: refuse without a lockout.
                        return Lockout(subject, 60.0)
                for _, slot, _ in slots:
                    table.add_held(slot, 1)
                return None
        except (TableBusy, TableFull):  # no room or no turn to count it: not now
            return Lockout("busy", 60.0)

    def end(self, ip: str, login: str, now: float, *, ok: bool) -> tuple[float, Lockout | None]:
        """Finish an attempt: (seconds to delay the answer, a lockout it started or None)."""
        try:
            with self.table.locked() as table:
                slots = self._slots(table, ip, login, now)
                for _, slot, _ in slots:
                    table.add_held(slot, -1)
                if ok:
                    return 0.0, None
                started: Lockout | None = None
                worst = 0
                for subject, slot, limit in slots:
                    table.add_time(slot, now)
                    failures = table.count(slot, now)
                    worst = max(worst, failures)
                    if failures >= limit and table.locked_until(slot) <= now:
                        table.lock_until(slot, now + self.limits.lockout)
                        started = started or Lockout(subject, self.limits.lockout, started=True)
        except (TableBusy, TableFull):  # the attempt stays counted as running: the safe side
            return self.limits.delay_max, None
        delay = min(self.limits.delay * 2 ** (worst - 1), self.limits.delay_max)
        return delay, started


def _slot(table: CountTable, subject: str, key: str, now: float, keep: tuple[int, ...] = ()) -> int:
    slot = table.find(f"{subject}\0{key}", now, keep=keep)
    assert slot is not None
    return slot


def guard_table(limits: AuthLimits, max_keys: int = 10_000, *, shared: bool = False) -> CountTable:
    """An `AuthGuard`'s table: `max_keys` addresses and logins, each with its failures
    within the window. `shared`: for the processes forked after it (`CountTable.make`)."""
    return CountTable.make(max_keys, limits.window, shared=shared)
