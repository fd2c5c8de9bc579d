"""SMPP tables: the last snapshot of every bind's counters, one row per bridge process and bind.

Each `mailsms serve` writes its binds' counters (`bridge/smpp/stats.py`) here every
`stats_interval` (bridge/transports/bind_stats.py), so `mailsms smsc stats` shows the
binds of every instance on the database, not only of one process (migration 0010).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from bridge.db.clock import utcnow


class BindStat(SQLModel, table=True):
    """One bind of one bridge process, as it was at `updated_at`."""

    __tablename__ = "bind_stat"

    instance: str = Field(primary_key=True)  # the bridge process: "host:pid"
    bind: str = Field(primary_key=True)  # the bind's name: the SMSC's, or "<smsc>#<n>"
    smsc: str
    state: str  # bound | paused | down
    window_used: int = 0
    window: int = 0
    per_second: float = 0.0  # submit_sm/s over the last interval
    submitted: int = 0
    throttled: int = 0
    rejected: int = 0
    timeouts: int = 0
    lost: int = 0  # connections lost
    receipts: int = 0
    mo: int = 0
    last_error: str = ""
    started_at: datetime = Field(default_factory=utcnow)  # when this process started
    updated_at: datetime = Field(default_factory=utcnow)
