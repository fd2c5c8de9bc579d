"""SMS-to-list tables: keyword lists and their members (join and leave by SMS)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from bridge.db.clock import utcnow
from bridge.keyword_lists.status import MemberStatus


class InboundList(SQLModel, table=True):
    """A named list senders join by keyword, and how its daily export is mailed."""

    __tablename__ = "inbound_list"
    __table_args__ = (UniqueConstraint("customer_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    name: str
    export_to: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    export_at: str = "06:00"  # HH:MM UTC
    export_mode: str = "changes"  # full | changes
    only_if_changed: bool = True
    last_export_at: datetime | None = None


class ListMember(SQLModel, table=True):
    """One number on a list (status member or left; kept for the change report)."""

    __tablename__ = "list_member"
    __table_args__ = (UniqueConstraint("list_id", "msisdn"),)

    id: int | None = Field(default=None, primary_key=True)
    list_id: int = Field(foreign_key="inbound_list.id", index=True)
    msisdn: str
    status: str = MemberStatus.MEMBER
    joined_at: datetime = Field(default_factory=utcnow)
    changed_at: datetime = Field(default_factory=utcnow)
