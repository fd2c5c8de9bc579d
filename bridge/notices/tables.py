"""The notice queue's table: every mail, DSN and report the bridge sends."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from bridge.db.clock import utcnow
from bridge.notices.status import NoticeStatus


class Notice(SQLModel, table=True):
    """One message the bridge sends out (status mail, DSN, SMS2Mail, HTTP push)."""

    __table_args__ = (Index("ix_notice_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str  # status | sms2mail | ...
    recipient: str
    order_id: str | None = Field(default=None, index=True)
    inbound_id: int | None = None
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = NoticeStatus.QUEUED
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    error: str = ""
