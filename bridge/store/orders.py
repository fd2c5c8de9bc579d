"""Store functions for the order queue: claim due orders, record each attempt's outcome.

Claiming takes a lease: the claimed rows get `next_attempt_at = now + lease` and
`attempts + 1` in the claiming transaction, so no other worker (or instance) takes
them while the submit runs, and a crash simply lets the lease run out: the order is
due again (a rare duplicate SMS beats a lost one). On PostgreSQL the claim uses
`FOR UPDATE SKIP LOCKED`, so several instances share one queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, insert, or_, select, text, update

from bridge.store.dsn import queue_final_dsn_for
from bridge.store.inbound import record_order_assignment
from bridge.store.models import (
    FINAL_ORDER_STATUSES,
    OPEN_ORDERS,
    Mail,
    Order,
    OrderEvent,
    Part,
    User,
)
from bridge.store.notices import FINAL_ROW, queue_status_notice_for
from bridge.store.status_push import queue_status_push_for

_order = Order.__table__  # type: ignore[attr-defined]
_event = OrderEvent.__table__  # type: ignore[attr-defined]
_part = Part.__table__  # type: ignore[attr-defined]
_mail = Mail.__table__  # type: ignore[attr-defined]
_user = User.__table__  # type: ignore[attr-defined]
_OPEN = ("queued", "deferred")


@dataclass(frozen=True, slots=True)
class OrderWork:
    """A claimed order, as dispatch needs it."""

    id: str
    recipient: str
    sender_id: str
    text: str
    encoding: str
    attempts: int
    created_at: datetime
    expires_at: datetime | None
    policy: dict[str, Any]
    priority: int = 0
    error: str = ""  # why the previous attempt did not succeed ("" on the first)


def claim_orders(conn: Connection, now: datetime, limit: int, lease: float) -> list[OrderWork]:
    """Claim up to `limit` due orders, express first, then oldest due first.

    One query per priority (express 1, normal 0), each an in-order range scan of the
    partial index ix_order_open, so a claim costs the same with 10 or 100,000 waiting.
    """
    rows: list[Any] = []
    for priority in (1, 0):
        if len(rows) >= limit:
            break
        query = (
            select(_order)
            .where(
                text(f'"order".{OPEN_ORDERS}'),
                _order.c.priority == priority,
                _order.c.next_attempt_at <= now,
            )
            .order_by(_order.c.next_attempt_at)
            .limit(limit - len(rows))
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows.extend(conn.execute(query).all())
    if not rows:
        return []
    ids = [r.id for r in rows]
    conn.execute(
        update(_order)
        .where(_order.c.id.in_(ids))
        .values(
            next_attempt_at=now + timedelta(seconds=lease),
            attempts=_order.c.attempts + 1,
            updated_at=now,
        )
    )
    return [
        OrderWork(
            id=r.id,
            recipient=r.recipient,
            sender_id=r.sender_id,
            text=r.text,
            encoding=r.encoding,
            attempts=r.attempts + 1,
            created_at=r.created_at,
            expires_at=r.expires_at,
            policy=r.policy or {},
            priority=r.priority,
            error=r.error or "",
        )
        for r in rows
    ]


def _event_row(order_id: str, at: datetime, event: str, detail: str) -> dict[str, Any]:
    return {"order_id": order_id, "at": at, "event": event, "detail": detail[:2000]}


def record_submitted(
    conn: Connection, order_id: str, now: datetime, transport: str, message_ids: tuple[str, ...]
) -> None:
    """All parts were accepted by the SMSC: store them and mark the order submitted."""
    record_submitted_many(conn, now, [Submitted(order_id, transport, message_ids)])


@dataclass(frozen=True, slots=True)
class Submitted:
    """An order whose parts the SMSC accepted, with its history lines of this attempt."""

    order_id: str
    transport: str
    message_ids: tuple[str, ...]
    events: tuple[tuple[str, str], ...] = ()  # written before the "submitted" line


_INSERT_PART = insert(_part)
_INSERT_EVENT = insert(_event)
_SET_SUBMITTED = (  # built once: statement building costs more CPU than the UPDATE
    update(_order)
    .where(_order.c.id == bindparam("o_id"), or_(*(_order.c.status == s for s in _OPEN)))
    .values(
        status="submitted",
        transport=bindparam("o_transport"),
        parts=bindparam("o_parts"),
        updated_at=bindparam("o_at"),
        error="",
    )
)


def record_submitted_many(conn: Connection, now: datetime, orders: Sequence[Submitted]) -> None:
    """Several submitted orders at once: parts, statuses and history in a few statements."""
    if not orders:
        return
    conn.execute(
        _INSERT_PART,
        [
            {
                "order_id": o.order_id,
                "seq": seq,
                "transport": o.transport,
                "smsc_id": smsc_id,
                "state": "submitted",
                "error_code": "",
                "updated_at": now,
            }
            for o in orders
            for seq, smsc_id in enumerate(o.message_ids, start=1)
        ],
    )
    conn.execute(
        _SET_SUBMITTED,
        [
            {"o_id": o.order_id, "o_transport": o.transport, "o_parts": len(o.message_ids)}
            | {"o_at": now}
            for o in orders
        ],
    )
    events = [_event_row(o.order_id, now, e, d) for o in orders for e, d in o.events]
    events += [
        _event_row(
            o.order_id, now, "submitted", f"via {o.transport}, ids {','.join(o.message_ids)}"
        )
        for o in orders
    ]
    conn.execute(_INSERT_EVENT, events)
    for o in orders:
        record_order_assignment(conn, o.order_id, now)  # replies from the recipient come back here


def record_deferred(
    conn: Connection, order_id: str, now: datetime, next_at: datetime, reason: str
) -> None:
    """A temporary failure: try again at `next_at`."""
    conn.execute(
        update(_order)
        .where(_order.c.id == order_id, _order.c.status.in_(_OPEN))
        .values(status="deferred", next_attempt_at=next_at, updated_at=now, error=reason[:2000])
    )
    conn.execute(
        insert(_event),
        [
            _event_row(
                order_id, now, "deferred", f"{reason}; next attempt {next_at:%Y-%m-%d %H:%M:%S}Z"
            )
        ],
    )


_SET_FINAL = (  # built once, like _SET_SUBMITTED
    update(_order)
    .where(
        _order.c.id == bindparam("f_id"),
        *(_order.c.status != s for s in sorted(FINAL_ORDER_STATUSES)),
    )
    .values(
        status=bindparam("f_status"),
        final_at=bindparam("f_at"),
        updated_at=bindparam("f_at"),
        error=bindparam("f_error"),
    )
)


def record_final(conn: Connection, order_id: str, now: datetime, status: str, reason: str) -> bool:
    """Move an open or submitted order to a final status (once) and queue its notice."""
    if status not in FINAL_ORDER_STATUSES:
        raise ValueError(f"{status!r} is not a final order status")
    result = conn.execute(
        _SET_FINAL,
        {"f_id": order_id, "f_status": status, "f_at": now, "f_error": reason[:2000]},
    )
    if result.rowcount == 0:
        return False
    conn.execute(_INSERT_EVENT, [_event_row(order_id, now, status, reason)])
    row = conn.execute(FINAL_ROW, {"order_id": order_id}).one()  # one read for all three
    queue_status_notice_for(conn, row, now)
    queue_final_dsn_for(conn, row, now)
    queue_status_push_for(conn, row, now)
    return True


def record_held(conn: Connection, order_id: str, now: datetime, error: str) -> None:
    """An unexpected error: park the order for an operator, keeping the traceback."""
    conn.execute(
        update(_order)
        .where(_order.c.id == order_id, _order.c.status.in_(_OPEN))
        .values(status="held", updated_at=now, error=error[-4000:])
    )
    conn.execute(
        insert(_event), [_event_row(order_id, now, "held", error.splitlines()[-1] if error else "")]
    )


def release_held(conn: Connection, order_id: str, now: datetime) -> bool:
    """Put a held order back in the queue (after an operator fixed the cause)."""
    result = conn.execute(
        update(_order)
        .where(_order.c.id == order_id, _order.c.status == "held")
        .values(status="queued", next_attempt_at=now, updated_at=now)
    )
    if result.rowcount:
        conn.execute(insert(_event), [_event_row(order_id, now, "released", "by operator")])
    return bool(result.rowcount)


def order_history(conn: Connection, order_id: str) -> list[tuple[datetime, str, str]]:
    rows = conn.execute(
        select(_event.c.at, _event.c.event, _event.c.detail)
        .where(_event.c.order_id == order_id)
        .order_by(_event.c.id)
    ).all()
    return [(r.at, r.event, r.detail) for r in rows]


def list_orders(conn: Connection, status: str | None, limit: int) -> list[dict[str, Any]]:
    query = (
        select(
            _order.c.id,
            _order.c.status,
            _order.c.recipient,
            _order.c.parts,
            _order.c.attempts,
            _order.c.created_at,
            _order.c.error,
            _user.c.address.label("sender"),
        )
        .select_from(_order.join(_user, _order.c.user_id == _user.c.id))
        .order_by(_order.c.created_at.desc(), _order.c.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(_order.c.status == status)
    return [dict(r._mapping) for r in conn.execute(query)]


def count_by_status(conn: Connection) -> dict[str, int]:
    from sqlalchemy import func

    rows = conn.execute(select(_order.c.status, func.count()).group_by(_order.c.status)).all()
    return {r[0]: int(r[1]) for r in rows}
