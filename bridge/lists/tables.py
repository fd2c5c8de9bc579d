"""Distribution-list tables: lists, their members, and the record of each mail sent to a list.

Kept out of `models.py` because only lists use them (migration 0005). Named
`distribution_*` so they do not collide with the inbound services' keyword lists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from bridge.db.clock import utcnow


class DistributionList(SQLModel, table=True):
    """A customer's named list of recipients; mail to `<name>@<domain>` goes to every member."""

    __tablename__ = "distribution_list"
    __table_args__ = (UniqueConstraint("customer_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    name: str  # lower-case local part
    description: str = ""
    fields: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class DistributionMember(SQLModel, table=True):
    """One number on a distribution list, with the values its placeholders use."""

    __tablename__ = "distribution_member"
    __table_args__ = (UniqueConstraint("list_id", "msisdn"),)

    id: int | None = Field(default=None, primary_key=True)
    list_id: int = Field(foreign_key="distribution_list.id", index=True)
    msisdn: str  # E.164
    first_name: str = ""
    last_name: str = ""
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class ListMail(SQLModel, table=True):
    """A mail that went to one or more lists: who was skipped, and whether its report is out."""

    __tablename__ = "list_mail"

    mail_id: str = Field(primary_key=True, foreign_key="mail.id")
    lists: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    members: int = 0
    # [{"msisdn", "name", "reason"}] for members that got no order (stopped, country)
    skipped: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    reported_at: datetime | None = None
