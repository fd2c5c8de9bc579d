"""Mail-to-SMS tables: mails, orders and their history, parts, receipts.

Times are timezone-aware UTC datetimes (`utcnow()`); SQLModel stores them as UTC on
SQLite and PostgreSQL alike and refuses naive ones. Every queue table has `status` and
`next_attempt_at`; workers claim due rows with `bridge.db.queue`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, text
from sqlmodel import Field, SQLModel

from bridge.db.clock import utcnow
from bridge.mt.status import OrderStatus, PartState, ReceiptStatus

# The SQL predicate of an open (claimable) order, written out so that the partial index
# ix_order_open and the claim query match it literally.
OPEN_ORDERS = "status IN ('queued', 'deferred')"
# Not final: an SMSC may still hold the message (the statuses not in FINAL_ORDER_STATUSES).
UNFINISHED_ORDERS = "status IN ('queued', 'deferred', 'submitted', 'held')"


class Mail(SQLModel, table=True):
    """One accepted SMTP transaction; its id is the "queued as" id."""

    id: str = Field(primary_key=True)
    received_at: datetime = Field(default_factory=utcnow)
    envelope_from: str
    user_id: int = Field(foreign_key="user.id", index=True)
    client_addr: str = ""
    helo: str = ""
    message_id: str = ""
    subject: str = ""
    size: int = 0
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    dsn_ret: str | None = None  # RFC 3461 RET (FULL | HDRS) as received
    dsn_envid: str | None = None  # RFC 3461 ENVID, xtext-decoded
    dedupe_key: str | None = Field(default=None, index=True)  # same mail delivered twice


class Order(SQLModel, table=True):
    """One MT request: one mail × one recipient number (E.164)."""

    __tablename__ = "order"
    __table_args__ = (
        Index("ix_order_due", "status", "next_attempt_at"),
        # Only open orders, in claiming order: a claim reads `limit` rows, whatever the backlog.
        Index(
            "ix_order_open",
            "priority",
            "next_attempt_at",
            sqlite_where=text(OPEN_ORDERS),
            postgresql_where=text(OPEN_ORDERS),
        ),
        Index("ix_order_created_at", "created_at"),  # reports and the purge look by time
        # a user's orders since a time (the rate limits): a range, not the user's history
        Index("ix_order_user_created", "user_id", "created_at"),
        # orders an SMSC may still hold, by recipient and sender (resubmit): the open ones only
        Index(
            "ix_order_unfinished",
            "recipient",
            "sender_id",
            sqlite_where=text(UNFINISHED_ORDERS),
            postgresql_where=text(UNFINISHED_ORDERS),
        ),
    )

    id: str = Field(primary_key=True)  # <mail id>.<n>
    mail_id: str = Field(foreign_key="mail.id", index=True)
    user_id: int = Field(foreign_key="user.id")
    recipient: str = Field(index=True)  # E.164 with '+'
    rcpt_address: str  # the envelope address exactly as the client wrote it
    sender_id: str
    text: str
    encoding: str  # gsm7 | ucs2
    parts: int
    status: str = OrderStatus.QUEUED
    priority: int = 0
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    final_at: datetime | None = None
    transport: str | None = None
    error: str = ""
    # why it failed for good, in a word (bridge/mt/causes.py FailureCause; "" when not
    # recorded: not failed, failed by a receipt, or failed before 0021), and with
    # "smsc-refused" the SMSC's command_status: what a DSN's status code is read from
    cause: str = ""
    cause_code: int | None = None
    policy: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dsn_notify: str | None = None  # RFC 3461 NOTIFY as received (e.g. "SUCCESS,FAILURE")
    dsn_orcpt: str | None = None  # RFC 3461 ORCPT as received
    delay_notified: bool = False  # a DELAY DSN was sent


class OrderEvent(SQLModel, table=True):
    """One line of an order's history: why each attempt happened and how it ended."""

    __tablename__ = "order_event"

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="order.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    event: str
    detail: str = ""


class Part(SQLModel, table=True):
    """One SMS segment of an order, with the SMSC's message id.

    SMSC message ids are not unique (counters restart and wrap, some SMSCs answer ""
    or one id for every part of a message), so a part is stored whatever id it got;
    receipts are matched to the most recent part with their id on their transport
    (`bridge/mt/receipts.py`), and `matchable` is false where that cannot be right.
    """

    __table_args__ = (Index("ix_part_smsc", "transport", "smsc_id", "submitted_at"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="order.id", index=True)
    seq: int
    transport: str
    smsc_id: str
    state: str = PartState.SUBMITTED
    error_code: str = ""
    updated_at: datetime = Field(default_factory=utcnow)
    submitted_at: datetime = Field(default_factory=utcnow)  # when its submit_sm went out
    matchable: bool = True  # false: receipts cannot be tied to it (see bridge/mt/parts.py)


class Receipt(SQLModel, table=True):
    """One delivery receipt exactly as received, before it is applied."""

    __table_args__ = (Index("ix_receipt_due", "status", "received_at"),)

    id: int | None = Field(default=None, primary_key=True)
    transport: str
    smsc_id: str
    state: str
    error_code: str = ""
    done_at: datetime | None = None
    raw: str = ""
    received_at: datetime = Field(default_factory=utcnow)
    status: str = ReceiptStatus.NEW
    part_id: int | None = None
