"""Backpressure: refuse new mail (452 4.3.1) while the order queue or the disk is too full.

The figures are refreshed in the background (`refresh`), so MAIL only reads numbers.
Between two refreshes the orders this process accepts are added to the queue depth
it read (`reserve` at DATA, before the commit; `release` if the commit did not
happen), so a burst cannot pass the high-water mark before the next refresh sees it:
MAIL is refused at the mark, a RCPT or a mail that would pass it gets 452 as well.
Several instances each count their own orders on top of the depth they all read.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from sqlalchemy import Connection, func, select

from bridge.db import prepared
from bridge.db.core import table
from bridge.db.store import Store
from bridge.mt.status import OPEN_ORDER_STATUSES
from bridge.mt.tables import Order

log = logging.getLogger("bridge.intake")
_order = table(Order)


# Built once and run on the driver with the statuses written out (`bridge.db.prepared`):
# read at every poll tick, so psycopg prepares it, and a plan made for any statuses read
# every order ever kept (tests/integration/test_history_scaling.py, generic plans).
_DEPTH = (
    select(func.count().label("depth"))
    .select_from(_order)
    .where(_order.c.status.in_(OPEN_ORDER_STATUSES))
)


def queue_depth(conn: Connection) -> int:
    """The orders waiting to be sent (queued or deferred)."""
    return int(prepared.fetch(conn, _DEPTH, {})[0].depth or 0)


class Backpressure:
    def __init__(
        self, store: Store, *, high_water: int, min_free_mb: int, disk: Path | None
    ) -> None:
        self.store = store
        self.high_water = high_water
        self.min_free_mb = min_free_mb
        self.disk = disk
        self.depth = 0
        self.free_mb: float | None = None
        self.reserved = 0  # orders of mails being committed now
        self.committed = 0  # orders this process committed since `depth` was read

    async def refresh(self) -> int:
        """Update the figures; returns 0 so it can run as a worker step on the poll tick."""
        counted = self.committed  # these are in the depth about to be read
        self.depth = await self.store.call(queue_depth)
        self.committed -= counted
        if self.disk is not None:
            try:
                self.free_mb = shutil.disk_usage(self.disk).free / 1_048_576
            except OSError as exc:
                log.warning("cannot read free space of %s: %s", self.disk, exc)
        return 0

    def queued(self) -> int:
        """The queue depth as this process knows it (read, plus accepted since)."""
        return self.depth + self.committed + self.reserved

    def reason(self, adding: int = 0) -> str | None:
        """Why new mail (or `adding` more orders) must wait, or None."""
        queued = self.queued()
        if queued + adding > self.high_water or (not adding and queued >= self.high_water):
            return f"{queued} orders queued, the limit is {self.high_water}"
        if self.free_mb is not None and self.free_mb < self.min_free_mb:
            return f"only {self.free_mb:.0f} MB free on the queue's disk"
        return None

    def reserve(self, orders: int) -> str | None:
        """Count `orders` of a mail about to be committed, or say why it must wait."""
        busy = self.reason(orders) if orders else None
        if busy is None:
            self.reserved += orders
        return busy

    def settle(self, orders: int, *, committed: bool) -> None:
        """The reserved mail was committed (its orders stay counted) or not."""
        self.reserved -= orders
        if committed:
            self.committed += orders
