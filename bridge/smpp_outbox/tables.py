"""The SMPP outbox's table: one row per deliver_sm owed to a customer's SMPP account."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from bridge.db.clock import utcnow


class SmppOutbox(SQLModel, table=True):
    """A deliver_sm (a delivery receipt or an MO SMS part) kept until the account's client
    answered it with deliver_sm_resp ESME_ROK (or refused it for good, or it was retried
    longer than `give_up_after`); rows with one `message_key` go in id order."""

    __tablename__ = "smpp_outbox"
    __table_args__ = (
        # an account's rows in the order a take reads them (queue.take_due)
        Index("ix_smpp_outbox_due", "system_id", "status", "next_attempt_at", "id"),
        # a message's rows by id: whether an earlier one is unsent
        Index("ix_smpp_outbox_message", "message_key", "status", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    system_id: str  # the SMPP account whose receiver/transceiver bind gets it
    kind: str  # receipt | mo
    message_key: str  # the order id (receipt) or "mo:<inbound id>" (the parts of one MO)
    pdu: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = "queued"  # queued | sent | refused (queue.OutboxStatus)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    error: str = ""
