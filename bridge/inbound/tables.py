"""Inbound tables: MO SMS, the numbers and customers' inbound settings, reply assignments,
the stop list and the auto-reply log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from bridge.db.clock import utcnow
from bridge.inbound.status import InboundStatus


class Inbound(SQLModel, table=True):
    """One MO SMS (after reassembly); `customer_id` and `route` are set when it is routed.

    `customer_id` is the customer whose number or keyword took the message (None: nobody's,
    e.g. unmatched on a shared number, or not routed yet); only that customer sees it.
    """

    __table_args__ = (
        Index("ix_inbound_due", "status", "next_attempt_at"),
        Index("ix_inbound_customer", "customer_id", "received_at"),
        # a sender's SMS to one of our numbers since a time (`[inbound] mo_limit`): a seek
        # and a range, however much the sender sent before; by source alone for the lists
        Index("ix_inbound_sender", "source", "destination", "received_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    transport: str
    source: str
    destination: str
    text: str
    encoding: str
    parts: int = 1
    received_at: datetime = Field(default_factory=utcnow)
    status: str = InboundStatus.RECEIVED
    next_attempt_at: datetime = Field(default_factory=utcnow)
    order_id: str | None = None  # the order this answers, when the reply rule found one
    error: str = ""
    customer_id: int | None = None  # whose number/keyword took it (set when routed)
    # How it was routed (an InboundRoute; "" until routed) and the keyword that matched.
    route: str = Field(default="", sa_column=Column(String, nullable=False, server_default=""))
    keyword: str = Field(default="", sa_column=Column(String, nullable=False, server_default=""))


class InboundCustomer(SQLModel, table=True):
    """A customer's inbound settings: where mail with nowhere else to go and admin notices go."""

    __tablename__ = "inbound_customer"

    customer_id: int = Field(primary_key=True, foreign_key="customer.id")
    postmaster: str = ""
    admin: str = ""
    stop_scope: str = "global"  # global | service (per inbound number)
    status_push: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow)


class InboundNumber(SQLModel, table=True):
    """One inbound number (or number prefix) of a customer, with its actions (`config`)."""

    __tablename__ = "inbound_number"
    __table_args__ = (UniqueConstraint("number", "customer_id"),)

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(index=True)  # E.164 long code, short code, or a prefix (sharing=prefix)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    sharing: str = "dedicated"  # dedicated | prefix | keyword | dynamic
    fallback: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class ReplyAssignment(SQLModel, table=True):
    """Who last texted this number from which of our numbers (dynamic SMS2Mail, reply by mail)."""

    __tablename__ = "reply_assignment"
    __table_args__ = (
        # a number's newest assignments (an inbound SMS's reply), in the order they are
        # read (created_at, id): a scan stops at the limit, whatever the plan
        Index("ix_reply_assignment_msisdn", "msisdn", "created_at", "id"),
        # a user's newest conversation with a number: one seek (bridge.inbound.store)
        Index("ix_reply_assignment_conversation", "msisdn", "user_id", "created_at", "id"),
        # a texter's newest assignments from one of our numbers (an inbound SMS's reply)
        Index("ix_reply_assignment_sender", "msisdn", "sender_id", "created_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    msisdn: str  # the texter, E.164
    sender_id: str  # our number / sender id used towards them
    customer_id: int = Field(index=True)
    user_id: int = Field(index=True)
    address: str
    origin: str = "order"  # order (an SMS was submitted) | sms2mail (a mail was sent)
    order_id: str | None = None
    message_id: str = ""
    subject: str = ""
    text: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(default_factory=utcnow)


class StopEntry(SQLModel, table=True):
    """A number that opted out, for one customer (0 = every customer), globally or per service."""

    __tablename__ = "stop_entry"
    __table_args__ = (UniqueConstraint("customer_id", "msisdn", "service"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(index=True)
    msisdn: str = Field(index=True)
    service: str = ""  # "" = every number of the customer; else the inbound number
    origin: str = "sms"  # sms | cli
    created_at: datetime = Field(default_factory=utcnow)


class AutoReplyLog(SQLModel, table=True):
    """When a number last auto-replied to a sender (the rate limit that prevents loops)."""

    __tablename__ = "autoreply_log"

    number: str = Field(primary_key=True)
    msisdn: str = Field(primary_key=True)
    last_at: datetime = Field(default_factory=utcnow)


class ConfirmationLog(SQLModel, table=True):
    """When a number last confirmed a STOP or START to a sender (at most one confirmation
    per `[inbound] confirmation_interval`: no SMS sent per SMS that comes in)."""

    __tablename__ = "confirmation_log"

    number: str = Field(primary_key=True)
    msisdn: str = Field(primary_key=True)
    last_at: datetime = Field(default_factory=utcnow)
