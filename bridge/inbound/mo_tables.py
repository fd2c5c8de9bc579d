"""Tables of the SMPP layer: MO parts kept until their concatenated message is complete.

Registered on SQLModel.metadata when imported (bridge.inbound.mo_store imports it);
created by migration 0003.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from bridge.db.clock import utcnow


class MoPartRow(SQLModel, table=True):
    """One acknowledged part of a concatenated MO whose other parts have not all arrived."""

    __tablename__ = "mo_part"
    __table_args__ = (
        UniqueConstraint("transport", "source", "destination", "ref", "total", "seq"),
        Index("ix_mo_part_age", "transport", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    transport: str
    source: str
    destination: str
    ref: int
    total: int
    seq: int
    data_coding: int
    udh: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    received_at: datetime = Field(default_factory=utcnow)
