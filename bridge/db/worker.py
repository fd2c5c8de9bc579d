"""The one loop every worker shares: step until idle, then wait for a wake-up or the poll tick.

A step claims due rows, handles them and commits, and returns how many it handled.
Producers call `wake()` after their commit; the poll tick covers deferred rows,
restarts and other instances. A step that fails is logged and retried after the
tick: the rows it claimed stay in the database, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from bridge.errors import StorageUnavailable

log = logging.getLogger("bridge.db.worker")


class Worker:
    def __init__(self, name: str, step: Callable[[], Awaitable[int]], poll_interval: float) -> None:
        self.name = name
        self._step = step
        self._poll = poll_interval
        self._wake = asyncio.Event()
        self.handled = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                handled = await self._step()
            except StorageUnavailable as exc:
                log.error("%s: storage unavailable, will retry: %s", self.name, exc)
                handled = 0
            except Exception:
                log.exception("%s: step failed, will retry", self.name)
                handled = 0
            self.handled += handled
            if handled:
                await asyncio.sleep(0)  # let the SMTP sessions run between batches
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
