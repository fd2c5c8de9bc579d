"""Throughput limits: a token bucket (msgs/s with a burst) and the back-off pause on throttling.

Pure: the clock is passed in. `TokenBucket.reserve(now)` books the next token and returns
how long the caller must wait before sending (GCRA / virtual scheduling, O(1)); a rate of
0 means unlimited. `ThrottlePause` is the bind's answer to ESME_RTHROTTLED / ESME_RMSGQFUL:
pause, doubling on every further throttle up to a ceiling, reset by the next success.
"""

from __future__ import annotations

from dataclasses import dataclass


class TokenBucket:
    """`rate` tokens per second, at most `burst` at once."""

    __slots__ = ("_tat", "burst", "rate")

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self._tat = 0.0  # theoretical arrival time of the next token

    def reserve(self, now: float) -> float:
        """Take one token; the seconds to wait before using it (0 when available now)."""
        if self.rate <= 0:
            return 0.0
        interval = 1.0 / self.rate
        tat = max(self._tat, now)
        self._tat = tat + interval
        return max(0.0, tat - (self.burst - 1.0) * interval - now)


@dataclass(slots=True)
class ThrottlePause:
    """Doubling pause after throttling answers; `until` is when sending may resume."""

    minimum: float = 1.0
    maximum: float = 60.0
    until: float = 0.0
    current: float = 0.0

    def throttled(self, now: float, hint: float | None = None) -> float:
        """Record one throttling answer; the length of the pause that starts now."""
        self.current = min(self.maximum, max(self.minimum, self.current * 2, hint or 0.0))
        self.until = max(self.until, now + self.current)
        return self.current

    def succeeded(self) -> None:
        self.current = 0.0

    def remaining(self, now: float) -> float:
        return max(0.0, self.until - now)
