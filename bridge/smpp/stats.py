"""Per-bind counters for observability: state, window use, throughput and error counts.

`BindStats` is mutated by its bind; `snapshot()` gives a frozen `BindReport` for logs
(and later metrics). Throughput is the submit_sm count over the last report interval.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BindReport:
    """One bind's state at one moment."""

    name: str
    state: str  # bound | paused | down
    window_used: int
    window: int
    per_second: float
    submitted: int
    throttled: int
    rejected: int
    timeouts: int
    lost: int
    receipts: int
    mo: int
    last_error: str

    def line(self) -> str:
        return (
            f"{self.name}: {self.state}, window {self.window_used}/{self.window}, "
            f"{self.per_second:.1f} submit/s, submitted {self.submitted}, "
            f"throttled {self.throttled}, rejected {self.rejected}, timeouts {self.timeouts}, "
            f"connection lost {self.lost}, receipts {self.receipts}, mo {self.mo}"
            + (f" (last error: {self.last_error})" if self.state == "down" else "")
        )


class BindStats:
    """Counters of one bind."""

    __slots__ = (
        "_mark_count",
        "_mark_time",
        "in_flight",
        "lost",
        "mo",
        "receipts",
        "rejected",
        "submitted",
        "throttled",
        "timeouts",
    )

    def __init__(self) -> None:
        self.submitted = self.throttled = self.rejected = self.timeouts = self.lost = 0
        self.receipts = self.mo = self.in_flight = 0
        self._mark_count = 0
        self._mark_time = 0.0

    def rate(self, now: float) -> float:
        """submit_sm/s since the previous call (the report interval)."""
        elapsed = now - self._mark_time
        count = self.submitted - self._mark_count
        self._mark_count, self._mark_time = self.submitted, now
        return count / elapsed if elapsed > 0 else 0.0

    def snapshot(
        self, name: str, state: str, window: int, now: float, last_error: str
    ) -> BindReport:
        return BindReport(
            name,
            state,
            self.in_flight,
            window,
            self.rate(now),
            self.submitted,
            self.throttled,
            self.rejected,
            self.timeouts,
            self.lost,
            self.receipts,
            self.mo,
            last_error,
        )
