"""The SMPP server's table: the customers' SMPP accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from bridge.db.clock import utcnow


class SmppAccount(SQLModel, table=True):
    """One SMPP login of a customer: its SMS are orders of `user_id` (policy, reports)."""

    __tablename__ = "smpp_account"

    id: int | None = Field(default=None, primary_key=True)
    system_id: str = Field(unique=True)
    customer_id: int = Field(index=True)
    user_id: int
    password_hash: str
    networks: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    bind_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    senders: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    max_binds: int = 2
    window: int = 10
    throughput: float = 0.0  # submit_sm per second over all binds; 0: no limit
    enabled: bool = True
    created_at: datetime = Field(default_factory=utcnow)
