"""Store functions for the HTTP push queue: queue a push (its body by the customer's push
template when one is set), claim due pushes, record outcomes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, or_, select, update

from bridge.db.bulk import bulk_execute
from bridge.db.core import delete_before, table
from bridge.db.prepared import fetch
from bridge.db.queue import Queue, claim
from bridge.notices.queue import queue_notice
from bridge.push.delivery_status import OPEN_PUSH_STATUSES, PushStatus
from bridge.push.tables import PushDelivery
from bridge.push.template import PushKind, inbound_values, render, status_values
from bridge.push.templates_store import get_template

_push = table(PushDelivery)
_QUEUE = Queue(_push, _push.c.status.in_(OPEN_PUSH_STATUSES))
# Built once (every inbound SMS pushed and every status push queues one): compiling an
# INSERT per push cost several times running it.
_INSERT_PUSH = insert(_push).returning(_push.c.id)


@dataclass(frozen=True, slots=True)
class PushFields:
    """A push's default fields by canonical name, for the customer's push template."""

    kind: PushKind
    values: Mapping[str, Any]

    @classmethod
    def status(cls, context: Mapping[str, Any]) -> PushFields:
        return cls(PushKind.STATUS, status_values(context))

    @classmethod
    def inbound(cls, context: Mapping[str, Any]) -> PushFields:
        return cls(PushKind.INBOUND, inbound_values(context))


def queue_push(
    conn: Connection,
    customer_id: int,
    inbound_id: int | None,
    target: dict[str, Any],
    body: str,
    content_type: str,
    now: datetime,
    give_up_after: float,
    fields: PushFields | None = None,
) -> int:
    """Queue a push of `body`; with `fields`, the customer's push template (when it has
    one for the kind) builds the body instead. The row keeps the exact body sent."""
    if fields is not None and customer_id:
        template = get_template(conn, customer_id)
        built = render(template, fields.kind, fields.values) if template is not None else None
        if built is not None:
            body, content_type = built
    values = {
        "customer_id": customer_id,
        "inbound_id": inbound_id,
        "target": target,
        "body": body,
        "content_type": content_type,
        "status": PushStatus.QUEUED,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "give_up_at": now + timedelta(seconds=give_up_after),
        "error": "",
    }
    return int(fetch(conn, _INSERT_PUSH, values)[0].id)


@dataclass(frozen=True, slots=True)
class PushWork:
    id: int
    customer_id: int
    inbound_id: int | None
    target: dict[str, Any]
    body: str
    content_type: str
    attempts: int
    created_at: datetime
    give_up_at: datetime


def claim_pushes(conn: Connection, now: datetime, limit: int, lease: float) -> list[PushWork]:
    rows = claim(conn, _QUEUE, now, limit, lease)
    return [
        PushWork(
            r.id,
            r.customer_id,
            r.inbound_id,
            r.target or {},
            r.body,
            r.content_type,
            r.attempts + 1,
            r.created_at,
            r.give_up_at,
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class PushRecord:
    """An attempt's outcome: the push's new status, its error, when it is due again."""

    push_id: int
    now: datetime
    status: PushStatus
    error: str = ""
    next_at: datetime | None = None


_RECORD = (  # built once: building and compiling a statement costs more than running it
    update(_push)
    .where(_push.c.id == bindparam("p_id"), or_(*(_push.c.status == s for s in OPEN_PUSH_STATUSES)))
    .values(
        status=bindparam("p_status"),
        error=bindparam("p_error"),
        sent_at=func.coalesce(bindparam("p_sent_at", type_=_push.c.sent_at.type), _push.c.sent_at),
        next_attempt_at=func.coalesce(
            bindparam("p_next_at", type_=_push.c.next_attempt_at.type), _push.c.next_attempt_at
        ),
    )
)


def record_pushes(conn: Connection, records: list[PushRecord]) -> list[None]:
    """Several attempts' outcomes in one statement (the push worker's group commit); a
    push no longer open (given up on meanwhile) is left as it is."""
    bulk_execute(
        conn,
        _RECORD,
        [
            {
                "p_id": r.push_id,
                "p_status": r.status.value,
                "p_error": r.error[-2000:],
                "p_sent_at": r.now if r.status == PushStatus.SENT else None,
                "p_next_at": r.next_at,
            }
            for r in records
        ],
    )
    return [None] * len(records)


def record_push(
    conn: Connection,
    push_id: int,
    now: datetime,
    status: PushStatus,
    error: str = "",
    next_at: datetime | None = None,
) -> None:
    record_pushes(conn, [PushRecord(push_id, now, status, error, next_at)])


# (conn, customer id) -> (the customer's name, the address its alerts go to), or None
Contacts = Callable[[Connection, int | None], tuple[str, str] | None]


def fail_push(
    conn: Connection,
    push_id: int,
    now: datetime,
    error: str,
    url: str,
    fallback_admin: str,
    contacts: Contacts,
) -> None:
    """Give a push up and tell the customer's admin (else postmaster, else `fallback_admin`)."""
    record_push(conn, push_id, now, PushStatus.FAILED, error)
    row = conn.execute(select(_push).where(_push.c.id == push_id)).one()
    name, to = contacts(conn, row.customer_id) or ("", "")
    to = to or fallback_admin
    if not to:
        return
    context = {
        "push_id": push_id,
        "url": url,
        "error": error,
        "attempts": row.attempts,
        "inbound_id": row.inbound_id,
        "customer": name,
        "created_at": row.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    queue_notice(
        conn,
        "push_failed",
        to,
        context,
        now,
        customer=context["customer"],
        inbound_id=row.inbound_id,
    )


def purge_pushes(conn: Connection, cut: datetime, *, dry_run: bool) -> int:
    """Pushes sent or given up before `cut` (their bodies hold SMS texts)."""
    done = _push.c.status.in_((PushStatus.SENT, PushStatus.FAILED))
    return delete_before(conn, _push, _push.c.created_at, cut, done, dry_run=dry_run)
