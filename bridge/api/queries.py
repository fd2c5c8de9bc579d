"""What the REST API reads and changes of a customer's orders; every query is scoped to it.

An order belongs to a customer through its user (`order.user_id` → `user.customer_id`);
an order of another customer is not found, exactly like an order that does not exist.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, select

from bridge.db.core import table
from bridge.mt.orders import order_history, record_final
from bridge.mt.status import CANCELLABLE_ORDER_STATUSES, OrderStatus
from bridge.mt.tables import Order, Part
from bridge.outcomes.steps import STEPS
from bridge.tenants.tables import User

_order = table(Order)
_part = table(Part)
_user = table(User)

MAX_LIMIT: Final = 500


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """The list's filters (all optional) and its page: newest first, `after` an order id."""

    since: datetime | None = None
    until: datetime | None = None
    recipient: str | None = None
    status: str | None = None
    cost_centre: str | None = None
    user: str | None = None
    limit: int = 50
    after: str | None = None


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _summary(r: Any) -> dict[str, Any]:
    policy = r.policy if isinstance(r.policy, dict) else {}
    return {
        "id": r.id,
        "mail_id": r.mail_id,
        "to": r.recipient,
        "sender_id": r.sender_id,
        "user": r.user,
        "status": r.status,
        "parts": r.parts,
        "encoding": r.encoding,
        "priority": "express" if r.priority else "normal",
        "cost_centre": policy.get("cost_centre", ""),
        "created_at": _iso(r.created_at),
        "updated_at": _iso(r.updated_at),
        "final_at": _iso(r.final_at),
        "error": r.error or None,
    }


def _select(customer_id: int) -> Any:
    return (
        select(_order, _user.c.address.label("user"))
        .join(_user, _user.c.id == _order.c.user_id)
        .where(_user.c.customer_id == customer_id)
    )


def get_order(conn: Connection, customer_id: int, order_id: str) -> dict[str, Any] | None:
    """An order of the customer with its text, parts and history; None: not found."""
    r = conn.execute(_select(customer_id).where(_order.c.id == order_id)).first()
    if r is None:
        return None
    parts = conn.execute(
        select(_part.c.seq, _part.c.state, _part.c.error_code, _part.c.submitted_at)
        .where(_part.c.order_id == order_id)
        .order_by(_part.c.seq, _part.c.id)
    ).all()
    return {
        **_summary(r),
        "text": r.text,
        "expires_at": _iso(r.expires_at),
        "send_at": _iso(r.next_attempt_at) if r.next_attempt_at > r.created_at else None,
        "part_states": [
            {
                "seq": p.seq,
                "state": p.state,
                "error_code": p.error_code or None,
                "submitted_at": _iso(p.submitted_at),
            }
            for p in parts
        ],
        "history": [
            {"at": _iso(at), "event": event, "detail": detail}
            for at, event, detail in order_history(conn, order_id)
        ],
    }


def list_orders(conn: Connection, customer_id: int, f: OrderFilter) -> list[dict[str, Any]]:
    """The customer's orders matching `f`, newest first, at most `f.limit`."""
    query = _select(customer_id)
    if f.since is not None:
        query = query.where(_order.c.created_at >= f.since)
    if f.until is not None:
        query = query.where(_order.c.created_at < f.until)
    if f.recipient:
        query = query.where(_order.c.recipient == f.recipient)
    if f.status:
        query = query.where(_order.c.status == f.status)
    if f.user:
        query = query.where(_user.c.address == f.user.lower())
    if f.after:
        mark = conn.execute(
            select(_order.c.created_at).where(_order.c.id == f.after)
        ).scalar_one_or_none()
        if mark is not None:
            query = query.where(
                (_order.c.created_at < mark)
                | ((_order.c.created_at == mark) & (_order.c.id < f.after))
            )
    query = query.order_by(_order.c.created_at.desc(), _order.c.id.desc())
    rows = [_summary(r) for r in conn.execute(query.limit(f.limit if not f.cost_centre else None))]
    if f.cost_centre:  # kept in the order's policy (JSON): filtered here, portable
        rows = [r for r in rows if r["cost_centre"] == f.cost_centre][: f.limit]
    return rows


class CancelResult(enum.StrEnum):
    CANCELLED = "cancelled"
    NOT_FOUND = "not_found"
    TOO_LATE = "too_late"


def cancel(conn: Connection, customer_id: int, order_id: str, now: datetime) -> CancelResult:
    """End an order of the customer not yet handed to an SMSC (failed, "cancelled")."""
    r = conn.execute(
        select(_order.c.status)
        .join(_user, _user.c.id == _order.c.user_id)
        .where(_order.c.id == order_id, _user.c.customer_id == customer_id)
    ).first()
    if r is None:
        return CancelResult.NOT_FOUND
    if r.status not in CANCELLABLE_ORDER_STATUSES:
        return CancelResult.TOO_LATE
    done = record_final(
        conn, order_id, now, OrderStatus.FAILED, "cancelled through the REST API", steps=STEPS
    )
    return CancelResult.CANCELLED if done else CancelResult.TOO_LATE
