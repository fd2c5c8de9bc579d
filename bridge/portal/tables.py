"""The portal's tables: its accounts (hashed passwords, lockout state) and their sessions.

A session is kept server-side so that logging out, disabling an account or changing its
password ends it at once, on every instance; the browser holds only a random token, and
the table holds its SHA-256.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from bridge.db.clock import utcnow


class PortalAccount(SQLModel, table=True):
    """A person who logs in to the portal: an operator, or one customer's administrator."""

    __tablename__ = "portal_account"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True)  # lower-cased
    role: str  # status.Role
    customer_id: int | None = Field(default=None, index=True)  # None for operators
    password_hash: str  # scrypt, as SMTP logins
    enabled: bool = True
    failed_logins: int = 0
    locked_until: datetime | None = None
    last_login_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class PortalSession(SQLModel, table=True):
    """One logged-in browser: found by the SHA-256 of its cookie's token."""

    __tablename__ = "portal_session"

    id: str = Field(primary_key=True)  # hex SHA-256 of the cookie's token
    account_id: int = Field(index=True)
    csrf_token: str
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)
