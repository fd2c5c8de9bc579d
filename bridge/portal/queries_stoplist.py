"""The portal's read of the stop list: one page of a customer's entries, newest first.

`bridge.inbound.actions_store.list_stops` reads every entry (the CLI's list and export);
a page needs a search and a window over a list that may hold 100,000 numbers, so it is
one query here, filtered by the customer the page shows (`None`: every customer).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from bridge.db.core import table
from bridge.inbound.actions_store import StopRow
from bridge.inbound.tables import StopEntry
from bridge.tenants.tables import Customer

_stop = table(StopEntry)
_customer = table(Customer)


@dataclass(frozen=True, slots=True)
class StopPage:
    rows: tuple[StopRow, ...]
    total: int  # entries matching the search


def stops_page(
    conn: Connection, customer_id: int | None, digits: str, offset: int, limit: int
) -> StopPage:
    """Entries whose number contains `digits` (all when empty), newest first."""
    where = []
    if customer_id is not None:
        where.append(_stop.c.customer_id == customer_id)
    if digits:
        where.append(_stop.c.msisdn.contains(digits, autoescape=True))
    total = conn.execute(select(func.count()).select_from(_stop).where(*where)).scalar()
    rows = conn.execute(
        select(_stop, _customer.c.name)
        .outerjoin(_customer, _customer.c.id == _stop.c.customer_id)
        .where(*where)
        .order_by(_stop.c.created_at.desc(), _stop.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return StopPage(
        tuple(StopRow(r.name or "*", r.msisdn, r.service, r.origin, r.created_at) for r in rows),
        int(total or 0),
    )
