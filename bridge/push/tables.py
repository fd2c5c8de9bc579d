"""The HTTP push tables: one row per push delivery, and the customers' push templates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from bridge.db.clock import utcnow
from bridge.push.delivery_status import PushStatus


class PushDelivery(SQLModel, table=True):
    """One HTTP push of an inbound SMS to a customer URL: a queue row with retries."""

    __tablename__ = "push_delivery"
    __table_args__ = (Index("ix_push_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(index=True)
    inbound_id: int | None = None
    target: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    body: str = ""
    content_type: str = "application/json"
    status: str = PushStatus.QUEUED
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    give_up_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    error: str = ""


class PushTemplateRow(SQLModel, table=True):
    """A customer's push template (`bridge.push.template`), stored as its checked data."""

    __tablename__ = "push_template"

    customer_id: int = Field(primary_key=True, foreign_key="customer.id")
    template: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)
