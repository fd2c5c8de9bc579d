"""Mails and their orders as written: one mail with its orders and their first history lines.

Every way in (the SMTP intake, system SMS of the inbound services) writes through
`insert_mails`; what else a front door writes in the same transaction (lists, notices,
holds) is its own step list (`bridge.intake.commit`). The insert uses SQLAlchemy Core
`executemany` (an ORM object per row costs several times more CPU than the SQLite write
itself).
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select

from bridge.db import prepared
from bridge.db.bulk import insert_together
from bridge.db.core import table
from bridge.mt.status import OrderStatus
from bridge.mt.tables import Mail, Order, OrderEvent


@dataclass(frozen=True, slots=True)
class NewOrder:
    id: str
    recipient: str
    rcpt_address: str
    sender_id: str
    text: str
    encoding: str
    parts: int
    priority: int
    expires_at: datetime
    policy: dict[str, Any]
    next_attempt_at: datetime | None = None  # later than the mail: send_at, quiet hours
    dsn_notify: str | None = None  # RFC 3461 NOTIFY as received
    dsn_orcpt: str | None = None  # RFC 3461 ORCPT as received
    # or held (SMS pumping protection, bridge.intake.velocity_store)
    status: OrderStatus = OrderStatus.QUEUED
    error: str = ""  # why it is held


@dataclass(frozen=True, slots=True)
class NewMail:
    id: str
    received_at: datetime
    envelope_from: str
    user_id: int
    client_addr: str
    helo: str
    message_id: str
    subject: str
    raw: bytes
    orders: tuple[NewOrder, ...] = field(default=())
    dsn_ret: str | None = None
    dsn_envid: str | None = None
    dedupe_key: str | None = None  # equal for the same mail delivered twice
    dedupe_since: datetime | None = None  # look for an earlier copy received after this


_mail = table(Mail)
_order = table(Order)
_event = table(OrderEvent)


# Built once: the intake's group commit asks it for every batch.
_EARLIER_COPIES = (
    select(_mail.c.id, _mail.c.dedupe_key, _mail.c.received_at)
    .where(
        _mail.c.dedupe_key.in_(bindparam("keys", expanding=True)),
        _mail.c.received_at >= bindparam("since"),
    )
    .order_by(_mail.c.received_at)
)


# PostgreSQL: the check-then-insert of a dedupe key, serialised across transactions (and
# bridge instances): a transaction-scoped advisory lock per key, taken before the check and
# held until the commit (a statement before the check's: under READ COMMITTED the check's
# snapshot is taken after the wait). One statement for all of a batch's keys, ascending, so
# two batches sharing several keys cannot deadlock (PostgreSQL evaluates a volatile function
# of the select list after the sort). Not a unique index: a key whose window has passed may
# be written again (the same Message-ID resent a week later is a new mail), and a unique
# violation would abort the whole group commit.
_LOCK_KEYS = (
    "SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(%(keys)s AS bigint[])) AS k ORDER BY k"
)


def dedupe_lock(key: str) -> int:
    """The advisory lock of a dedupe key: a signed 64-bit hash computed here (the same on
    every instance and every PostgreSQL version, unlike the server's `hashtext`)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def find_duplicates(conn: Connection, mails: list[NewMail]) -> dict[str, str]:
    """{mail id: id of an earlier copy within its dedupe window}, in one query for all.

    An earlier copy is a mail written before, or one earlier in `mails` that is itself
    written (the same mail sent again on a second connection, in the same group commit).
    On PostgreSQL the batch's keys are locked first, until the transaction ends: another
    transaction with one of them waits here, then sees this one's mail.
    """
    wanted = [m for m in mails if m.dedupe_key is not None and m.dedupe_since is not None]
    if not wanted:
        return {}
    keys = list({m.dedupe_key for m in wanted if m.dedupe_key is not None})
    if conn.dialect.name == "postgresql":
        prepared.drive(conn, _LOCK_KEYS, {"keys": sorted({dedupe_lock(k) for k in keys})})
    since = min(m.dedupe_since for m in wanted if m.dedupe_since is not None)
    earlier: dict[str, list[tuple[datetime, str]]] = {}
    for r in prepared.fetch(conn, _EARLIER_COPIES, {"keys": keys, "since": since}):
        earlier.setdefault(r.dedupe_key, []).append((r.received_at, str(r.id)))
    found: dict[str, str] = {}
    for m in wanted:
        copies = earlier.setdefault(m.dedupe_key or "", [])
        for received_at, mail_id in copies:  # the earliest first
            if m.dedupe_since is not None and received_at >= m.dedupe_since:
                found[m.id] = mail_id
                break
        else:  # it is written: a later copy in `mails` names it, as a later commit would
            bisect.insort(copies, (m.received_at, m.id), key=lambda copy: copy[0])
    return found


def insert_mails(
    conn: Connection, mails: list[NewMail], *, checked: bool = False
) -> dict[str, str]:
    """Insert mails, their orders and the orders' first history lines.

    Returns {mail id: id of the earlier copy} for mails that were duplicates and
    therefore not inserted again (their 250 names the earlier copy); with `checked`
    the caller has set duplicates aside already.
    """
    duplicates = {} if checked else find_duplicates(conn, mails)
    mails = [m for m in mails if m.id not in duplicates]
    if not mails:
        return duplicates
    orders = [(m, o) for m in mails for o in m.orders]
    insert_together(  # on PostgreSQL one statement at a steady load (one mail, one order)
        conn,
        [
            (
                _mail,
                [
                    {
                        "id": m.id,
                        "received_at": m.received_at,
                        "envelope_from": m.envelope_from,
                        "user_id": m.user_id,
                        "client_addr": m.client_addr,
                        "helo": m.helo,
                        "message_id": m.message_id,
                        "subject": m.subject,
                        "size": len(m.raw),
                        "raw": m.raw,
                        "dsn_ret": m.dsn_ret,
                        "dsn_envid": m.dsn_envid,
                        "dedupe_key": m.dedupe_key,
                    }
                    for m in mails
                ],
            ),
            (  # a list mail may carry 100,000 orders
                _order,
                [
                    {
                        "id": o.id,
                        "mail_id": m.id,
                        "user_id": m.user_id,
                        "recipient": o.recipient,
                        "rcpt_address": o.rcpt_address,
                        "sender_id": o.sender_id,
                        "text": o.text,
                        "encoding": o.encoding,
                        "parts": o.parts,
                        "status": o.status,
                        "priority": o.priority,
                        "attempts": 0,
                        "next_attempt_at": o.next_attempt_at or m.received_at,
                        "created_at": m.received_at,
                        "updated_at": m.received_at,
                        "expires_at": o.expires_at,
                        "error": o.error,
                        "policy": o.policy,
                        "dsn_notify": o.dsn_notify,
                        "dsn_orcpt": o.dsn_orcpt,
                        "delay_notified": False,
                    }
                    for m, o in orders
                ],
            ),
            (
                _event,
                [
                    {
                        "order_id": o.id,
                        "at": m.received_at,
                        "event": o.status,
                        "detail": f"from {m.envelope_from}" + (f"; {o.error}" if o.error else ""),
                    }
                    for m, o in orders
                ],
            ),
        ],
    )
    return duplicates
