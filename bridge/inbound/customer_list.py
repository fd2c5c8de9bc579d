"""A customer's inbound SMS as the REST API and the portal list them: only the rows it took.

An inbound row belongs to the customer recorded when it was routed (`inbound.customer_id`,
set by the inbound step: the customer whose number, keyword or reply assignment took it).
A row that matched nobody on a shared number, or that is not routed yet, belongs to no
customer and is shown to none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, true

from bridge.db.core import table
from bridge.inbound.tables import Inbound

_inbound = table(Inbound)


@dataclass(frozen=True, slots=True)
class InboundFilter:
    """The list's filters (all optional) and its page: newest first, `after` an inbound id."""

    since: datetime | None = None
    until: datetime | None = None
    source: str | None = None  # the texter's number ("from")
    destination: str | None = None  # our number it was sent to ("to")
    limit: int = 50
    after: int | None = None


def _item(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "from": r.source,
        "to": r.destination,
        "text": r.text,
        "parts": r.parts,
        "received_at": r.received_at.isoformat(),
        "status": r.status,
        "route": r.route,
        "keyword": r.keyword or None,
    }


def list_inbound(
    conn: Connection, customer_id: int | None, f: InboundFilter
) -> list[dict[str, Any]]:
    """The customer's inbound SMS matching `f`, newest first, at most `f.limit`
    (`customer_id` None: every customer's and nobody's, for an operator)."""
    scope = _inbound.c.customer_id == customer_id if customer_id is not None else true()
    query = select(_inbound).where(scope)
    if f.since is not None:
        query = query.where(_inbound.c.received_at >= f.since)
    if f.until is not None:
        query = query.where(_inbound.c.received_at < f.until)
    if f.source:
        query = query.where(_inbound.c.source == f.source)
    if f.destination:
        query = query.where(_inbound.c.destination == f.destination)
    if f.after is not None:
        mark = conn.execute(
            select(_inbound.c.received_at).where(_inbound.c.id == f.after, scope)
        ).scalar_one_or_none()
        if mark is not None:
            query = query.where(
                (_inbound.c.received_at < mark)
                | ((_inbound.c.received_at == mark) & (_inbound.c.id < f.after))
            )
    query = query.order_by(_inbound.c.received_at.desc(), _inbound.c.id.desc()).limit(f.limit)
    return [_item(r) for r in conn.execute(query)]
