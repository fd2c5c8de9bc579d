"""Directory-sync tables: the record of every sync run and the lock that keeps runs apart.

Kept out of `models.py` because only dirsync uses them (migration 0002).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from bridge.db.clock import utcnow


class SyncRun(SQLModel, table=True):
    """One `mailsms dirsync` run: what it read, what it changed or why it refused."""

    __tablename__ = "sync_run"

    id: int | None = Field(default=None, primary_key=True)
    customer: str = Field(index=True)
    source: str  # ldap | csv
    status: str  # a SyncRunStatus (bridge/tenants/sync_status.py)
    dry_run: bool = False
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime = Field(default_factory=utcnow)
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    message: str = ""  # the one-line summary or the reason of a refusal/failure
    details: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class DirsyncLock(SQLModel, table=True):
    """Held while a run writes; `name` is the customer, `holder` is "host:pid"."""

    __tablename__ = "dirsync_lock"

    name: str = Field(primary_key=True)
    holder: str
    acquired_at: datetime = Field(default_factory=utcnow)
