"""A small log-rate limiter: events caused by clients are logged, floods of them are counted.

A client can make the listener log at will (bad commands, failed TLS handshakes,
wrong passwords). `LogLimiter.event` writes at most `burst` lines per key and
`interval` seconds, where the keys are the event's kind together with the client's
address, and the kind alone (so neither one client nor many clients together can fill
the log); the next line written for a key says how many were left out. Its filter form,
`LogLimiter.filter_for`, does the same for a foreign library's logger (aiosmtpd's).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Window:
    start: float
    written: int = 0
    left_out: int = 0


class LogLimiter:
    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 10,
        total_burst: int = 100,
        interval: float = 60.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.burst = burst
        self.total_burst = total_burst
        self.interval = interval
        self.max_keys = max_keys
        self.clock = clock
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def _window(self, key: str, now: float) -> _Window:
        window = self._windows.get(key)
        if window is None or now - window.start >= self.interval:
            left_out = window.left_out if window is not None else 0
            window = _Window(start=now, left_out=left_out)
            self._windows[key] = window
        self._windows.move_to_end(key)
        while len(self._windows) > self.max_keys:
            self._windows.popitem(last=False)
        return window

    def allow(self, kind: str, client: str = "") -> tuple[bool, int]:
        """(write this line?, how many lines of this kind were left out before it)."""
        now = self.clock()
        windows = [self._window(kind, now)]
        if client:
            windows.append(self._window(f"{kind} {client}", now))
        limits = [self.total_burst, self.burst]
        if any(w.written >= limit for w, limit in zip(windows, limits, strict=False)):
            for w in windows:
                w.left_out += 1
            return False, 0
        left_out = max(w.left_out for w in windows)
        for w in windows:
            w.written += 1
            w.left_out = 0
        return True, left_out

    def event(
        self,
        level: int,
        kind: str,
        client: str,
        msg: str,
        *args: object,
        exc_info: BaseException | None = None,
    ) -> bool:
        """Log `msg % args` unless this kind of event (from this client) floods; True if written."""
        write, left_out = self.allow(kind, client)
        if not write:
            return False
        if left_out:
            msg += " (%d similar lines left out)"
            args = (*args, left_out)
        self.logger.log(level, msg, *args, exc_info=exc_info)
        return True

    def filter_for(self) -> logging.Filter:
        """A logging filter applying the same limits to another logger, per message template."""
        limiter = self

        class _RateFilter(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                return limiter.allow("library", f"{record.levelno} {record.msg}")[0]

        return _RateFilter()
