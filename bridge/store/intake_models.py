"""Tables of the enterprise intake: SMTP AUTH credentials (stored hashed)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from bridge.store.models import utcnow


class Credential(SQLModel, table=True):
    """A login for SMTP AUTH; it authorises senders of one customer."""

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    password_hash: str  # scrypt$n$r$p$salt$hash (base64)
    enabled: bool = True
    created_at: datetime = Field(default_factory=utcnow)
