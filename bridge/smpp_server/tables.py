"""The SMPP server's tables: the customers' SMPP accounts, the parts of unfinished messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
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


class SmppPart(SQLModel, table=True):
    """One part of a concatenated message whose other parts have not all come yet.

    Each part is committed (and answered with the message id) as it comes, so a client
    that waits for every submit_sm_resp works too; the last part turns the rows of its
    message into one order, in the same transaction, and they are deleted. When the rest
    does not come within `part_wait`, the rows become a failed order instead (the
    client's receipt, query_sm and the reports say so).
    """

    __tablename__ = "smpp_part"
    __table_args__ = (Index("ix_smpp_part_key", "system_id", "part_key"),)

    id: int | None = Field(default=None, primary_key=True)
    system_id: str
    part_key: str  # source|destination|reference|total, as the client sent them
    seq: int
    total: int
    mail_id: str  # the message id given to every part: the order's mail id
    part: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    text: str
    encoding: str
    created_at: datetime = Field(default_factory=utcnow)
    # the message as its part made it (mail and order, `orders.message_facts`): the
    # failed order written when the rest of the parts does not come
    message: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
