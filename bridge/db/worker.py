"""The one loop every worker shares: step until idle, then wait for a wake-up or the poll tick.

A step claims due rows, handles them and commits, and returns how many it handled.
Producers call `wake()` after their commit; the poll tick covers deferred rows,
restarts and other instances. A step that fails is logged and retried after the
tick: the rows it claimed stay in the database, so nothing is lost.

After a step that handled rows the worker steps again at once (more may be due), unless
its `more` says the step left nothing behind (its batch was not full): then it waits for
a wake-up, and a step that would find nothing is not run. Wake-ups that come together
are one: however many producers call `wake()` while a step runs or before the worker
runs again, it steps once. `settle` (seconds, for work whose latency matters little:
receipts, notices) lets a wake-up wait that long, so that what arrives meanwhile is
handled in the same step (one transaction for many rows instead of one each).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bridge.errors import StorageUnavailable

log = logging.getLogger("bridge.db.worker")


class Worker:
    def __init__(
        self,
        name: str,
        step: Callable[[], Awaitable[int]],
        poll_interval: float,
        *,
        more: Callable[[], bool] | None = None,
        settle: float = 0.0,
    ) -> None:
        self.name = name
        self._step = step
        self._poll = poll_interval
        self._more = more
        self._settle = settle
        self._woken = False  # a wake-up arrived since the last step began
        self._waiter: asyncio.Future[None] | None = None  # set while waiting
        self._timer: asyncio.TimerHandle | None = None  # a settling wake-up
        self.handled = 0
        # steps run, steps that handled nothing, wake() calls (for benchmarks and tests)
        self.counts = {"steps": 0, "idle_steps": 0, "wakeups": 0}

    def wake(self) -> None:
        """Step again soon (at once, or after `settle`); call it on the event loop."""
        self.counts["wakeups"] += 1
        if self._settle <= 0:
            self._wake_now()
        elif self._timer is None and not self._woken:
            self._timer = asyncio.get_running_loop().call_later(self._settle, self._wake_now)

    def _wake_now(self) -> None:
        self._timer = None
        self._woken = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def run(self) -> None:
        try:
            while True:
                self._woken = False
                try:
                    handled = await self._step()
                except StorageUnavailable as exc:
                    log.error("%s: storage unavailable, will retry: %s", self.name, exc)
                    handled = 0
                except Exception:
                    log.exception("%s: step failed, will retry", self.name)
                    handled = 0
                self.handled += handled
                self.counts["steps"] += 1
                if not handled:
                    self.counts["idle_steps"] += 1
                if self._woken or (handled and (self._more is None or self._more())):
                    await asyncio.sleep(0)  # let the SMTP sessions run between batches
                    continue
                await self._idle()
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    async def _idle(self) -> None:
        """Until a wake-up or the poll tick (a future and a timer: no task per wait)."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        tick = loop.call_later(self._poll, _resolve, waiter)
        try:
            await waiter
        finally:
            tick.cancel()
            self._waiter = None


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
