"""Store functions for the notice queue: queue status mails, claim due notices, record outcomes.

A notice row holds everything its template needs (`context`), so the mailer renders
it without further queries and a notice can be re-sent exactly as it was queued.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, or_, select, update

from bridge.db.bulk import bulk_insert
from bridge.db.core import delete_before, table
from bridge.db.prepared import fetch
from bridge.db.queue import Queue, claim
from bridge.mt.status import OrderStatus
from bridge.notices.shown_time import shown_time
from bridge.notices.status import OPEN_NOTICE_STATUSES, NoticeStatus
from bridge.notices.tables import Notice

_notice = table(Notice)
_QUEUE = Queue(_notice, _notice.c.status.in_(OPEN_NOTICE_STATUSES))


# Final statuses that are not failures: delivered, and "unconfirmed" (sent, no delivery
# report: nothing is known to have failed; a DSN says "relayed" for it).
NOT_FAILED = frozenset({OrderStatus.DELIVERED, OrderStatus.UNCONFIRMED})


def wants_notice(notify: str, status: str) -> bool:
    """Does a user with this `notify` setting want a status mail for this final status?"""
    if notify == "all":
        return True
    return notify == "failures" and status not in NOT_FAILED


# One notice, its id back: built once, compiled once per set of columns given (building
# and compiling an INSERT cost ~6 times what running it does).
_INSERT_NOTICE_ID = insert(_notice).returning(_notice.c.id)
_COLUMNS = frozenset(_notice.c.keys())


def status_notice_row(row: Any, now: datetime) -> dict[str, Any] | None:
    """The notice row of a final order's status mail (`row` read with
    `bridge.outcomes.final_row`), or None when its policy wants none."""
    policy = row.policy or {}
    if "html" not in (policy.get("notify_channel") or ("html",)):
        return None
    if not wants_notice(str(policy.get("notify", "failures")), row.status):
        return None
    zone = str(policy.get("timezone") or "UTC")  # the user's, else the customer's, else ours
    context: dict[str, Any] = {
        "customer": row.customer_name,
        "timezone": zone,
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
        "received_at": shown_time(row.received_at, zone),
        "final_at": shown_time(row.final_at or now, zone),
        "subject": row.mail_subject,
        "in_reply_to": row.mail_message_id,
        "to_name": row.display_name,
        "cost_centre": policy.get("cost_centre", ""),
    }
    return {
        "kind": "status",
        "recipient": policy.get("notify_address") or row.envelope_from,
        "order_id": row.id,
        "context": context,
        "status": NoticeStatus.QUEUED,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "error": "",
    }


def queue_status_notices(conn: Connection, notices: Sequence[dict[str, Any]]) -> None:
    """Queue several status mails (rows from `status_notice_row`) in one statement, in order."""
    bulk_insert(conn, _notice, notices)


@dataclass(frozen=True, slots=True)
class NewNotice:
    """A notice written in the same transaction as what caused it (a preview of a mail)."""

    kind: str
    recipient: str
    context: dict[str, Any]
    customer: str  # its templates render the notice


def queue_notices(conn: Connection, notices: Sequence[NewNotice], now: datetime) -> None:
    """Queue several notices in one statement (the intake's commit)."""
    bulk_insert(
        conn,
        _notice,
        [
            {
                "kind": n.kind,
                "recipient": n.recipient,
                "context": {**n.context, "customer": n.customer},
                "status": NoticeStatus.QUEUED,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "error": "",
            }
            for n in notices
        ],
    )


def queue_notice(
    conn: Connection,
    kind: str,
    recipient: str,
    context: dict[str, Any],
    now: datetime,
    *,
    customer: str,
    **links: Any,
) -> int:
    """Queue any notice (sms2mail, …) with its complete template context.

    `customer` (its name, "" for the bridge's own mails) picks the customer's templates
    when the notice is rendered: every notice names it, so none can forget it.
    """
    if not links.keys() <= _COLUMNS:
        raise ValueError(f"not columns of a notice: {sorted(links.keys() - _COLUMNS)}")
    values = {
        "kind": kind,
        "recipient": recipient,
        "context": {**context, "customer": customer},
        "status": NoticeStatus.QUEUED,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "error": "",
        **links,
    }
    return int(fetch(conn, _INSERT_NOTICE_ID, values)[0].id)


@dataclass(frozen=True, slots=True)
class NoticeWork:
    id: int
    kind: str
    recipient: str
    context: dict[str, Any]
    attempts: int
    created_at: datetime


def claim_notices(conn: Connection, now: datetime, limit: int, lease: float) -> list[NoticeWork]:
    rows = claim(conn, _QUEUE, now, limit, lease)
    return [
        NoticeWork(r.id, r.kind, r.recipient, r.context or {}, r.attempts + 1, r.created_at)
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class NoticeOutcome:
    """How one send attempt ended: sent, deferred (with next_at), failed or held."""

    notice_id: int
    status: NoticeStatus
    error: str = ""
    next_at: datetime | None = None


def _record_statement(**extra: Any) -> Any:
    return (
        update(_notice)
        .where(
            _notice.c.id == bindparam("n_id"),
            or_(*(_notice.c.status == s for s in OPEN_NOTICE_STATUSES)),
        )
        .values(status=bindparam("n_status"), error=bindparam("n_error"), **extra)
    )


# Built once (statement building costs more CPU than the UPDATE): sent, rescheduled, other.
_RECORD_SENT = _record_statement(sent_at=bindparam("n_at"))
_RECORD_NEXT = _record_statement(next_attempt_at=bindparam("n_next"))
_RECORD = _record_statement()


def record_notices(conn: Connection, now: datetime, outcomes: Sequence[NoticeOutcome]) -> None:
    """Record the send attempts of one mailer step (a few executemany statements)."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for o in outcomes:
        row = {"n_id": o.notice_id, "n_status": o.status, "n_error": o.error[-4000:]}
        if o.status == NoticeStatus.SENT:
            groups.setdefault(_RECORD_SENT, []).append({**row, "n_at": now})
        elif o.next_at is not None:
            groups.setdefault(_RECORD_NEXT, []).append({**row, "n_next": o.next_at})
        else:
            groups.setdefault(_RECORD, []).append(row)
    for statement, rows in groups.items():
        conn.execute(statement, rows)


def count_notices(conn: Connection) -> dict[tuple[str, str], int]:
    """How many notices there are per (kind, status)."""
    rows = conn.execute(
        select(_notice.c.kind, _notice.c.status, func.count()).group_by(
            _notice.c.kind, _notice.c.status
        )
    )
    return {(r[0], r[1]): int(r[2]) for r in rows}


def list_notices(
    conn: Connection, status: str | None, limit: int, order_id: str | None = None
) -> list[dict[str, Any]]:
    """The newest notices (of one status, or of one order), with their last error."""
    query = (
        select(
            _notice.c.id,
            _notice.c.kind,
            _notice.c.recipient,
            _notice.c.status,
            _notice.c.attempts,
            _notice.c.created_at,
            _notice.c.sent_at,
            _notice.c.next_attempt_at,
            _notice.c.order_id,
            _notice.c.error,
        )
        .order_by(_notice.c.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(_notice.c.status == status)
    if order_id:
        query = query.where(_notice.c.order_id == order_id)
    return [dict(r._mapping) for r in conn.execute(query)]


def purge_notices(conn: Connection, cut: datetime, *, dry_run: bool) -> int:
    """Notices sent or given up before `cut` (they hold the texts they were about)."""
    done = _notice.c.status.in_((NoticeStatus.SENT, NoticeStatus.FAILED))
    return delete_before(conn, _notice, _notice.c.created_at, cut, done, dry_run=dry_run)
