"""Store functions for the notice queue: queue status mails, claim due notices, record outcomes.

A notice row holds everything its template needs (`context`), so the mailer renders
it without further queries and a notice can be re-sent exactly as it was queued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from bridge.store.models import Mail, Notice, Order, User

_notice = Notice.__table__  # type: ignore[attr-defined]
_order = Order.__table__  # type: ignore[attr-defined]
_mail = Mail.__table__  # type: ignore[attr-defined]
_user = User.__table__  # type: ignore[attr-defined]
_OPEN = ("queued", "deferred")


def _iso(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def wants_notice(notify: str, status: str) -> bool:
    """Does a user with this `notify` setting want a status mail for this final status?"""
    if notify == "all":
        return True
    return notify == "failures" and status != "delivered"


def queue_status_notice(conn: Connection, order_id: str, now: datetime) -> int | None:
    """Queue the status mail for a finished order if its policy asks for one."""
    from bridge.store import lists  # lists imports this module

    mail_id = conn.execute(select(_order.c.mail_id).where(_order.c.id == order_id)).scalar()
    if mail_id is not None and lists.is_list_mail(conn, mail_id):
        lists.queue_list_report(conn, mail_id, now)  # one cumulative report, not one per order
        return None
    row = conn.execute(
        select(
            _order,
            _mail.c.message_id.label("mail_message_id"),
            _mail.c.subject.label("mail_subject"),
            _mail.c.envelope_from,
            _mail.c.received_at,
            _user.c.display_name,
        )
        .select_from(_order.join(_mail).join(_user, _order.c.user_id == _user.c.id))
        .where(_order.c.id == order_id)
    ).one()
    policy = row.policy or {}
    if "html" not in (policy.get("notify_channel") or ("html",)):
        return None
    if not wants_notice(str(policy.get("notify", "failures")), row.status):
        return None
    context: dict[str, Any] = {
        "order_id": row.id,
        "mail_id": row.mail_id,
        "status": row.status,
        "recipient": row.recipient,
        "sender_id": row.sender_id,
        "text": row.text,
        "encoding": row.encoding,
        "parts": row.parts,
        "attempts": row.attempts,
        "error": row.error,
        "received_at": _iso(row.received_at),
        "final_at": _iso(row.final_at or now),
        "subject": row.mail_subject,
        "in_reply_to": row.mail_message_id,
        "to_name": row.display_name,
        "cost_centre": policy.get("cost_centre", ""),
    }
    result = conn.execute(
        insert(_notice).values(
            kind="status",
            recipient=policy.get("notify_address") or row.envelope_from,
            order_id=row.id,
            context=context,
            status="queued",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            error="",
        )
    )
    key = result.inserted_primary_key
    return int(key[0]) if key else None


def queue_notice(
    conn: Connection,
    kind: str,
    recipient: str,
    context: dict[str, Any],
    now: datetime,
    **links: Any,
) -> int:
    """Queue any notice (sms2mail, …) with its complete template context."""
    result = conn.execute(
        insert(_notice).values(
            kind=kind,
            recipient=recipient,
            context=context,
            status="queued",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            error="",
            **links,
        )
    )
    key = result.inserted_primary_key
    return int(key[0]) if key else 0


@dataclass(frozen=True, slots=True)
class NoticeWork:
    id: int
    kind: str
    recipient: str
    context: dict[str, Any]
    attempts: int
    created_at: datetime


def claim_notices(conn: Connection, now: datetime, limit: int, lease: float) -> list[NoticeWork]:
    query = (
        select(_notice)
        .where(_notice.c.status.in_(_OPEN), _notice.c.next_attempt_at <= now)
        .order_by(_notice.c.next_attempt_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = conn.execute(query).all()
    if not rows:
        return []
    conn.execute(
        update(_notice)
        .where(_notice.c.id.in_([r.id for r in rows]))
        .values(next_attempt_at=now + timedelta(seconds=lease), attempts=_notice.c.attempts + 1)
    )
    return [
        NoticeWork(r.id, r.kind, r.recipient, r.context or {}, r.attempts + 1, r.created_at)
        for r in rows
    ]


def record_notice(
    conn: Connection,
    notice_id: int,
    now: datetime,
    status: str,
    error: str = "",
    next_at: datetime | None = None,
) -> None:
    """Record a send attempt: sent, deferred (with next_at), failed or held."""
    values: dict[str, Any] = {"status": status, "error": error[-4000:]}
    if status == "sent":
        values["sent_at"] = now
    if next_at is not None:
        values["next_attempt_at"] = next_at
    conn.execute(
        update(_notice)
        .where(_notice.c.id == notice_id, _notice.c.status.in_(_OPEN))
        .values(**values)
    )
