"""What `mailsms dirsync runs` shows: the record of each directory sync, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from bridge.db.core import table
from bridge.tenants.directory_tables import SyncRun

_run = table(SyncRun)


@dataclass(frozen=True, slots=True)
class SyncRunListing:
    id: int
    customer: str
    source: str
    status: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime
    counts: dict[str, Any]
    message: str
    details: tuple[str, ...]


def list_runs(
    conn: Connection, *, customer: str | None = None, limit: int = 20
) -> list[SyncRunListing]:
    """At most `limit` runs, newest first, of `customer` or of every customer."""
    query = select(_run).order_by(_run.c.started_at.desc(), _run.c.id.desc()).limit(limit)
    if customer is not None:
        query = query.where(_run.c.customer == customer)
    return [
        SyncRunListing(
            r.id,
            r.customer,
            r.source,
            r.status,
            r.dry_run,
            r.started_at,
            r.finished_at,
            dict(r.counts or {}),
            r.message,
            tuple(r.details or ()),
        )
        for r in conn.execute(query)
    ]
