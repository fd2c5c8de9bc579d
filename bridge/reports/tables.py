"""The monthly report archive: one row per customer and month, with its summary and CSV.

Kept out of `models.py` because only reporting uses it (migration 0005).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bridge.db.clock import utcnow


class MonthlyReport(SQLModel, table=True):
    """A customer's counts for one month (by service, cost centre and user), as archived."""

    __tablename__ = "monthly_report"
    __table_args__ = (UniqueConstraint("customer_id", "month"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    month: str  # "2026-10"
    generated_at: datetime = Field(default_factory=utcnow)
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    csv: str = Field(default="", sa_column=Column(Text, nullable=False))
    mailed_at: datetime | None = None
