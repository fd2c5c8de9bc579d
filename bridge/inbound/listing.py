"""What `mailsms inbound messages` shows: the received SMS, newest first, by status, number
and time (unroutable, limited and held ones included, with why)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, or_, select

from bridge.db.core import table
from bridge.inbound.status import InboundStatus
from bridge.inbound.tables import Inbound

_inbound = table(Inbound)

STATUSES = tuple(s.value for s in InboundStatus)


@dataclass(frozen=True, slots=True)
class InboundListing:
    id: int
    received_at: datetime
    status: str
    source: str
    destination: str
    transport: str
    parts: int
    text: str
    order_id: str | None
    error: str


def list_messages(
    conn: Connection,
    *,
    status: str | None = None,
    number: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[InboundListing]:
    """At most `limit` received SMS, newest first; `number` matches the phone (source) or the
    number it was sent to (destination)."""
    query = select(_inbound).order_by(_inbound.c.received_at.desc(), _inbound.c.id.desc())
    if status is not None:
        query = query.where(_inbound.c.status == status)
    if number is not None:
        query = query.where(or_(_inbound.c.source == number, _inbound.c.destination == number))
    if since is not None:
        query = query.where(_inbound.c.received_at >= since)
    return [
        InboundListing(
            r.id,
            r.received_at,
            r.status,
            r.source,
            r.destination,
            r.transport,
            r.parts,
            r.text,
            r.order_id,
            r.error,
        )
        for r in conn.execute(query.limit(limit))
    ]
