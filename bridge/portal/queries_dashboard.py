"""The dashboard's counts: orders per day by status and encoding, inbound SMS per day.

Read-only queries for `/portal/` (`bridge/portal/pages/dashboard.py`), scoped to one
customer or (operators) all. Days are UTC days of `created_at` (orders) and
`received_at` (inbound). An order counts as *sent* once it reached the network, as
*failed* when it finally did not get through (the monthly report's words,
`bridge/reports/store.py`); parts are counted for sent orders (what is billed).

An inbound SMS counts for the customer recorded on its row when it was routed (whose
number, keyword or reply assignment took it), as the REST API's inbound list shows it;
an SMS that matched nobody, or arrived before that column existed, counts for no customer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from bridge.db.core import table
from bridge.inbound.tables import Inbound
from bridge.mt.status import OrderStatus
from bridge.mt.tables import Order
from bridge.reports.store import FAILED, SENT
from bridge.tenants.tables import User

_order = table(Order)
_user = table(User)
_inbound = table(Inbound)

# Numbers a customer holds alone: inbound to them is the customer's.


@dataclass(frozen=True, slots=True)
class Period:
    """Whole UTC days, `first` to `last` inclusive."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime(self.first.year, self.first.month, self.first.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        nxt = self.last + timedelta(days=1)
        return datetime(nxt.year, nxt.month, nxt.day, tzinfo=UTC)

    def days(self) -> tuple[str, ...]:
        n = (self.last - self.first).days + 1
        return tuple((self.first + timedelta(days=i)).isoformat() for i in range(n))


@dataclass(frozen=True, slots=True)
class DayCounts:
    orders: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class DashboardCounts:
    days: tuple[str, ...]
    per_day: Mapping[str, DayCounts]
    parts_by_encoding: Mapping[str, int]  # "gsm7" / "ucs2" → parts of sent orders
    inbound_per_day: Mapping[str, int]

    def total(self) -> DayCounts:
        rows = self.per_day.values()
        return DayCounts(
            sum(r.orders for r in rows),
            sum(r.sent for r in rows),
            sum(r.delivered for r in rows),
            sum(r.failed for r in rows),
        )


def _day(value: Any) -> str:
    """func.date() gives a string on SQLite and a date on PostgreSQL: "YYYY-MM-DD"."""
    return str(value)[:10]


def orders_per_day(
    conn: Connection, customer_id: int | None, period: Period
) -> tuple[dict[str, DayCounts], dict[str, int]]:
    """(counts per day, parts of sent orders per encoding) of the customer's orders (None: all)."""
    day = func.date(_order.c.created_at)
    query = (
        select(
            day.label("day"),
            _order.c.status,
            _order.c.encoding,
            func.count().label("n"),
            func.coalesce(func.sum(_order.c.parts), 0).label("parts"),
        )
        .where(_order.c.created_at >= period.start, _order.c.created_at < period.end)
        .group_by(day, _order.c.status, _order.c.encoding)
    )
    if customer_id is not None:
        query = query.select_from(_order.join(_user, _order.c.user_id == _user.c.id)).where(
            _user.c.customer_id == customer_id
        )
    per_day: dict[str, dict[str, int]] = {}
    parts: dict[str, int] = {}
    for r in conn.execute(query):
        counts = per_day.setdefault(_day(r.day), dict.fromkeys(("o", "s", "d", "f"), 0))
        n = int(r.n)
        counts["o"] += n
        if r.status in SENT:
            counts["s"] += n
            parts[r.encoding] = parts.get(r.encoding, 0) + int(r.parts)
        if r.status == OrderStatus.DELIVERED:
            counts["d"] += n
        if r.status in FAILED:
            counts["f"] += n
    return (
        {k: DayCounts(v["o"], v["s"], v["d"], v["f"]) for k, v in per_day.items()},
        parts,
    )


def inbound_per_day(conn: Connection, customer_id: int | None, period: Period) -> dict[str, int]:
    """Inbound SMS per day: all (None), or those the customer's numbers and keywords took
    (the row's customer, recorded when it was routed: `inbound.record_route`)."""
    day = func.date(_inbound.c.received_at)
    query = (
        select(day.label("day"), func.count().label("n"))
        .where(_inbound.c.received_at >= period.start, _inbound.c.received_at < period.end)
        .group_by(day)
    )
    if customer_id is not None:
        query = query.where(_inbound.c.customer_id == customer_id)
    return {_day(r.day): int(r.n) for r in conn.execute(query)}


def dashboard_counts(conn: Connection, customer_id: int | None, period: Period) -> DashboardCounts:
    per_day, parts = orders_per_day(conn, customer_id, period)
    return DashboardCounts(
        period.days(), per_day, parts, inbound_per_day(conn, customer_id, period)
    )
