"""Store functions for the SMTP intake: who the sender is, and writing a mail with its orders.

The insert uses SQLAlchemy Core `executemany` (an ORM object per row costs several
times more CPU than the SQLite write itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select

from bridge.db.bulk import bulk_insert
from bridge.intake.velocity import VelocityCheck
from bridge.lists.store import insert_list_mails
from bridge.mt.tables import Mail, Order, OrderEvent
from bridge.notices.tables import Notice
from bridge.tenants.tables import Alias, Customer, Profile, User


@dataclass(frozen=True, slots=True)
class Sender:
    """An envelope sender as the intake needs it: identity plus its settings levels."""

    user_id: int
    customer_id: int
    customer_name: str
    address: str
    display_name: str
    enabled: bool
    customer_enabled: bool
    customer_settings: dict[str, Any]
    profile_settings: dict[str, Any]
    user_settings: dict[str, Any]


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
    status: str = "queued"  # or "held" (SMS pumping protection, bridge.intake.velocity_store)
    error: str = ""  # why it is held


@dataclass(frozen=True, slots=True)
class NewNotice:
    kind: str
    recipient: str
    context: dict[str, Any]
    customer: str  # its templates render the notice


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
    notices: tuple[NewNotice, ...] = field(default=())
    list_mail: dict[str, Any] | None = None  # a list_mail row when it went to lists
    dsn_ret: str | None = None
    dsn_envid: str | None = None
    dedupe_key: str | None = None  # equal for the same mail delivered twice
    dedupe_since: datetime | None = None  # look for an earlier copy received after this
    conversation: int = 0  # at commit, the first n orders keep a conversation's sender number
    velocity: VelocityCheck | None = None  # at commit, SMS pumping across mails


_user = User.__table__  # type: ignore[attr-defined]
_alias = Alias.__table__  # type: ignore[attr-defined]
_customer = Customer.__table__  # type: ignore[attr-defined]
_profile = Profile.__table__  # type: ignore[attr-defined]
_mail = Mail.__table__  # type: ignore[attr-defined]
_order = Order.__table__  # type: ignore[attr-defined]
_event = OrderEvent.__table__  # type: ignore[attr-defined]
_notice = Notice.__table__  # type: ignore[attr-defined]


# One query, built once: the user by address, else by alias, with its settings levels.
_SENDER = (
    select(
        _user.c.id,
        _user.c.customer_id,
        _user.c.address,
        _user.c.display_name,
        _user.c.enabled,
        _user.c.settings,
        _customer.c.enabled.label("customer_enabled"),
        _customer.c.name.label("customer_name"),
        _customer.c.settings.label("customer_settings"),
        _profile.c.settings.label("profile_settings"),
    )
    .select_from(_user.join(_customer).outerjoin(_profile, _user.c.profile_id == _profile.c.id))
    .where(
        _user.c.id
        == func.coalesce(
            select(_user.c.id).where(_user.c.address == bindparam("address")).scalar_subquery(),
            select(_alias.c.user_id)
            .where(_alias.c.address == bindparam("address"))
            .limit(1)
            .scalar_subquery(),
        )
    )
)


def find_sender(conn: Connection, address: str) -> Sender | None:
    """The user whose address or alias is `address` (case-insensitive), or None."""
    row = conn.execute(_SENDER, {"address": address.lower()}).first()
    if row is None:
        return None
    return Sender(
        user_id=row.id,
        customer_id=row.customer_id,
        customer_name=row.customer_name,
        address=row.address,
        display_name=row.display_name,
        enabled=row.enabled,
        customer_enabled=row.customer_enabled,
        customer_settings=row.customer_settings or {},
        profile_settings=row.profile_settings or {},
        user_settings=row.settings or {},
    )


def find_duplicate(conn: Connection, mail: NewMail) -> str | None:
    """The id of an earlier copy of this mail within the dedupe window, if any."""
    return find_duplicates(conn, [mail]).get(mail.id)


def find_duplicates(conn: Connection, mails: list[NewMail]) -> dict[str, str]:
    """{mail id: id of an earlier copy within its dedupe window}, in one query for all."""
    wanted = [m for m in mails if m.dedupe_key is not None and m.dedupe_since is not None]
    if not wanted:
        return {}
    since = min(m.dedupe_since for m in wanted if m.dedupe_since is not None)
    earlier: dict[str, list[tuple[datetime, str]]] = {}
    for r in conn.execute(
        select(_mail.c.id, _mail.c.dedupe_key, _mail.c.received_at)
        .where(_mail.c.dedupe_key.in_({m.dedupe_key for m in wanted}), _mail.c.received_at >= since)
        .order_by(_mail.c.received_at)
    ):
        earlier.setdefault(r.dedupe_key, []).append((r.received_at, str(r.id)))
    found: dict[str, str] = {}
    for m in wanted:
        for received_at, mail_id in earlier.get(m.dedupe_key or "", ()):
            if m.dedupe_since is not None and received_at >= m.dedupe_since:
                found[m.id] = mail_id
                break
    return found


def _in_conversation(conn: Connection, mail: NewMail) -> NewMail:
    """Replies keep the conversation's sender number (looked up in the commit's transaction,
    which saves the intake a database round trip per mail)."""
    from bridge.inbound.store import conversation_orders  # inbound imports this module

    n = mail.conversation
    direct = conversation_orders(conn, mail.user_id, mail.orders[:n], mail.received_at)
    return replace(mail, orders=direct + mail.orders[n:])


def insert_mails(conn: Connection, mails: list[NewMail]) -> dict[str, str]:
    """Insert mails, their orders and the orders' first history lines.

    Returns {mail id: id of the earlier copy} for mails that were duplicates and
    therefore not inserted again (their 250 names the earlier copy).
    """
    duplicates = find_duplicates(conn, mails)
    mails = [m for m in mails if m.id not in duplicates]
    if not mails:
        return duplicates
    mails = [_in_conversation(conn, m) if m.conversation else m for m in mails]
    if any(m.velocity for m in mails):
        from bridge.intake.velocity_store import hold_pumping  # it imports this module's types

        mails = hold_pumping(conn, mails)
    conn.execute(
        insert(_mail),
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
    )
    insert_list_mails(conn, [{"mail_id": m.id, **m.list_mail} for m in mails if m.list_mail])
    notices = [(m, n) for m in mails for n in m.notices]
    if notices:
        conn.execute(
            insert(_notice),
            [
                {
                    "kind": n.kind,
                    "recipient": n.recipient,
                    "context": {**n.context, "customer": n.customer},
                    "status": "queued",
                    "attempts": 0,
                    "next_attempt_at": m.received_at,
                    "created_at": m.received_at,
                    "error": "",
                }
                for m, n in notices
            ],
        )
    orders = [(m, o) for m in mails for o in m.orders]
    if not orders:
        return duplicates
    bulk_insert(  # a list mail may carry 100,000 orders
        conn,
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
    )
    bulk_insert(  # a list mail may carry 100,000 orders
        conn,
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
    )
    return duplicates
