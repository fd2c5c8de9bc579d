"""The REST API's tables: API keys per customer, and the answers kept for Idempotency-Key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from bridge.db.clock import utcnow


class ApiKey(SQLModel, table=True):
    """One API key of a customer; its SMS are orders of `user_id` (policy, reports).

    The key itself is never stored: `key_id` (the public part of the token) finds the
    row, `key_hash` (HMAC-SHA256 of the token under `salt`) proves the secret part.
    """

    __tablename__ = "api_key"
    __table_args__ = (UniqueConstraint("customer_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    key_id: str = Field(unique=True)
    customer_id: int = Field(index=True)
    user_id: int
    name: str
    salt: str
    key_hash: str
    networks: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class ApiIdempotency(SQLModel, table=True):
    """The answer given to a POST with an Idempotency-Key, kept so a retry gets it again."""

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("customer_id", "idem_key"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int
    idem_key: str
    request_hash: str
    status: int
    body: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, index=True)
