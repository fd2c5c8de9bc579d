"""Backpressure: refuse new mail (452 4.3.1) while the order queue or the disk is too full.

The figures are refreshed in the background (`refresh`), so MAIL only reads two numbers.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from sqlalchemy import Connection, func, select

from bridge.store.models import Order
from bridge.store.store import Store

log = logging.getLogger("bridge.intake")
_order = Order.__table__  # type: ignore[attr-defined]


def queue_depth(conn: Connection) -> int:
    query = (
        select(func.count()).select_from(_order).where(_order.c.status.in_(["queued", "deferred"]))
    )
    return int(conn.execute(query).scalar() or 0)


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

    async def refresh(self) -> int:
        """Update the figures; returns 0 so it can run as a worker step on the poll tick."""
        self.depth = await self.store.call(queue_depth)
        if self.disk is not None:
            try:
                self.free_mb = shutil.disk_usage(self.disk).free / 1_048_576
            except OSError as exc:
                log.warning("cannot read free space of %s: %s", self.disk, exc)
        return 0

    def reason(self) -> str | None:
        if self.depth >= self.high_water:
            return f"{self.depth} orders queued, the limit is {self.high_water}"
        if self.free_mb is not None and self.free_mb < self.min_free_mb:
            return f"only {self.free_mb:.0f} MB free on the queue's disk"
        return None
