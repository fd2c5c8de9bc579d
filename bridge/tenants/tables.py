"""Tenants' tables: customers, profiles, users, aliases and SMTP AUTH logins (stored hashed).

Times are timezone-aware UTC datetimes (`utcnow()`), as in every table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from bridge.db.clock import utcnow


class Customer(SQLModel, table=True):
    """A company using the bridge; the top of the settings cascade."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    enabled: bool = True
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Profile(SQLModel, table=True):
    """A named group of settings inside a customer (e.g. "sales", "sap")."""

    __table_args__ = (UniqueConstraint("customer_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    name: str
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class User(SQLModel, table=True):
    """A mail address that may send SMS, with its own settings."""

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    profile_id: int | None = Field(default=None, foreign_key="profile.id")
    address: str = Field(unique=True, index=True)  # lower-cased envelope address
    display_name: str = ""
    mobile: str | None = None
    enabled: bool = True
    origin: str = "manual"  # manual | dirsync | demo
    external_id: str | None = Field(default=None, index=True)  # the directory's stable id
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    disabled_at: datetime | None = None


class Alias(SQLModel, table=True):
    """Another envelope address a user may send from."""

    address: str = Field(primary_key=True)  # lower-cased
    user_id: int = Field(foreign_key="user.id", index=True)


class Credential(SQLModel, table=True):
    """A login for SMTP AUTH; it authorises senders of one customer."""

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    password_hash: str  # scrypt$n$r$p$salt$hash (base64)
    enabled: bool = True
    created_at: datetime = Field(default_factory=utcnow)
