"""Per-bind SMPP statistics in the database: each bridge process writes its binds' counters
every `stats_interval`, and `mailsms smsc stats` reads every process's.

A process is named "host:pid"; its rows are replaced at each snapshot. Rows of processes
that stopped stay (their `updated_at` tells how old they are) for a day, then go.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, select

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.store import Store
from bridge.smpp.stats import BindReport
from bridge.transports.tables import BindStat

_stat = table(BindStat)

KEEP_STOPPED = timedelta(days=1)  # rows of a process that stopped writing, kept this long


def this_instance() -> str:
    """The name of this bridge process in `bind_stat`: "host:pid"."""
    return f"{socket.gethostname()}:{os.getpid()}"


def record_binds(
    conn: Connection,
    instance: str,
    smsc: str,
    started_at: datetime,
    reports: Sequence[BindReport],
    now: datetime,
) -> None:
    """Replace `instance`'s rows of these binds by `reports`; forget rows a day stale."""
    names = [r.name for r in reports]
    conn.execute(delete(_stat).where(_stat.c.instance == instance, _stat.c.bind.in_(names)))
    conn.execute(delete(_stat).where(_stat.c.updated_at < now - KEEP_STOPPED))
    if reports:
        conn.execute(
            insert(_stat),
            [
                {
                    "instance": instance,
                    "bind": r.name,
                    "smsc": smsc,
                    "state": r.state,
                    "window_used": r.window_used,
                    "window": r.window,
                    "per_second": r.per_second,
                    "submitted": r.submitted,
                    "throttled": r.throttled,
                    "rejected": r.rejected,
                    "timeouts": r.timeouts,
                    "lost": r.lost,
                    "receipts": r.receipts,
                    "mo": r.mo,
                    "last_error": r.last_error[:500],
                    "started_at": started_at,
                    "updated_at": now,
                }
                for r in reports
            ],
        )


@dataclass(frozen=True, slots=True)
class BindStatRow:
    """One bind of one process, as last written."""

    instance: str
    report: BindReport
    smsc: str
    started_at: datetime
    updated_at: datetime


def list_binds(conn: Connection, smsc: str | None = None) -> list[BindStatRow]:
    """Every bind of every process (newest snapshot first within an SMSC)."""
    query = select(_stat).order_by(_stat.c.smsc, _stat.c.bind, _stat.c.updated_at.desc())
    if smsc is not None:
        query = query.where(_stat.c.smsc == smsc)
    return [
        BindStatRow(
            r.instance,
            BindReport(
                r.bind,
                r.state,
                r.window_used,
                r.window,
                r.per_second,
                r.submitted,
                r.throttled,
                r.rejected,
                r.timeouts,
                r.lost,
                r.receipts,
                r.mo,
                r.last_error,
            ),
            r.smsc,
            r.started_at,
            r.updated_at,
        )
        for r in conn.execute(query)
    ]


class StoreBindStats:
    """Writes one transport's bind reports for this process (`SmppTransport(stats_sink=…)`)."""

    def __init__(self, store: Store, instance: str | None = None) -> None:
        self.store = store
        self.instance = instance or this_instance()
        self.started_at = utcnow()

    async def record(self, smsc: str, reports: Sequence[BindReport]) -> None:
        await self.store.call(
            record_binds, self.instance, smsc, self.started_at, tuple(reports), utcnow()
        )
