"""What the REST API reads and changes of a customer's orders; every query is scoped to it.

An order belongs to a customer through its user (`order.user_id` → `user.customer_id`);
an order of another customer is not found, exactly like an order that does not exist.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, select

from bridge.db.core import table
from bridge.mt.orders import record_final
from bridge.mt.status import CANCELLABLE_ORDER_STATUSES, OrderStatus
from bridge.mt.tables import Order
from bridge.outcomes.steps import STEPS
from bridge.reports.store import OrderFilter as ReportFilter
from bridge.reports.store import order_detail, query_orders
from bridge.tenants.tables import User

_order = table(Order)
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


def _summary(r: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": r["id"],
        "mail_id": r["mail_id"],
        "to": r["recipient"],
        "sender_id": r["sender_id"],
        "user": r["user"],
        "status": r["status"],
        "parts": r["parts"],
        "encoding": r["encoding"],
        "priority": "express" if r["priority"] else "normal",
        "cost_centre": r["cost_centre"],
        "created_at": _iso(r["created_at"]),
        "updated_at": _iso(r["updated_at"]),
        "final_at": _iso(r["final_at"]),
        "error": r["error"] or None,
    }


def get_order(conn: Connection, customer_id: int, order_id: str) -> dict[str, Any] | None:
    """An order of the customer with its text, parts and history; None: not found."""
    r = order_detail(conn, customer_id, order_id)
    if r is None:
        return None
    return {
        **_summary(r),
        "text": r["text"],
        "expires_at": _iso(r["expires_at"]),
        "send_at": _iso(r["next_attempt_at"]) if r["next_attempt_at"] > r["created_at"] else None,
        "part_states": [
            {
                "seq": p["seq"],
                "state": p["state"],
                "error_code": p["error_code"] or None,
                "submitted_at": _iso(p["submitted_at"]),
            }
            for p in r["part_states"]
        ],
        "history": [
            {"at": _iso(at), "event": event, "detail": detail} for at, event, detail in r["history"]
        ],
    }


def list_orders(conn: Connection, customer_id: int, f: OrderFilter) -> list[dict[str, Any]]:
    """The customer's orders matching `f`, newest first, at most `f.limit`."""
    rows = query_orders(
        conn,
        ReportFilter(
            since=f.since,
            until=f.until,
            customer_id=customer_id,
            user=f.user,
            recipient=f.recipient,
            status=f.status,
            cost_centre=f.cost_centre,
            limit=f.limit,
            after=f.after,
            newest_first=True,
        ),
    )
    return [_summary(r) for r in rows]


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
