"""Store functions for MO parts: kept until their concatenated message is complete.

`add_mo_part` commits one part (a redelivered part replaces its copy) and returns every
part of its message once all are there; the transport acknowledges the deliver_sm only
after that commit. `StoreMoParts` is the async `MoPartStore` the running bridge hands
to its SMPP transports.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.store import Store
from bridge.errors import StorageUnavailable
from bridge.inbound.mo_tables import MoPartRow
from bridge.transports.base import InboxUnavailable
from bridge.transports.mo_parts import complete
from bridge.values import MoKey, MoPart

_mo = table(MoPartRow)


def _key_filter(key: MoKey) -> Any:
    transport, source, destination, ref, total = key
    return (
        (_mo.c.transport == transport)
        & (_mo.c.source == source)
        & (_mo.c.destination == destination)
        & (_mo.c.ref == ref)
        & (_mo.c.total == total)
    )


def _part(r: Any) -> MoPart:
    return MoPart(
        r.transport, r.source, r.destination, r.ref, r.total, r.seq, r.data_coding, r.udh, r.payload
    )


def add_mo_part(conn: Connection, part: MoPart, now: datetime) -> tuple[MoPart, ...] | None:
    """Keep `part`; every part of its message (seq order) once all are stored."""
    where = _key_filter(part.key)
    values = {"data_coding": part.data_coding, "udh": part.udh, "payload": part.payload}
    done = conn.execute(update(_mo).where(where, _mo.c.seq == part.seq).values(**values))
    if done.rowcount == 0:
        conn.execute(
            insert(_mo).values(
                transport=part.transport,
                source=part.source,
                destination=part.destination,
                ref=part.ref,
                total=part.total,
                seq=part.seq,
                received_at=now,
                **values,
            )
        )
    rows = conn.execute(select(_mo).where(where)).all()
    return complete([_part(r) for r in rows], part.total)


def discard_mo(conn: Connection, key: MoKey) -> int:
    return int(conn.execute(delete(_mo).where(_key_filter(key))).rowcount)


def expired_mo(conn: Connection, transport: str, before: datetime) -> list[tuple[MoPart, ...]]:
    """Incomplete messages of `transport` whose first part arrived before `before`."""
    rows = conn.execute(select(_mo).where(_mo.c.transport == transport).order_by(_mo.c.id)).all()
    groups: dict[MoKey, list[Any]] = {}
    for r in rows:
        groups.setdefault((r.transport, r.source, r.destination, r.ref, r.total), []).append(r)
    return [
        tuple(_part(r) for r in sorted(g, key=lambda r: r.seq))
        for g in groups.values()
        if min(r.received_at for r in g) <= before
    ]


class StoreMoParts:
    """`MoPartStore` on the bridge's database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, part: MoPart) -> tuple[MoPart, ...] | None:
        try:
            return await self.store.call(add_mo_part, part, utcnow())
        except StorageUnavailable as exc:
            raise InboxUnavailable(str(exc)) from exc

    async def discard(self, key: MoKey) -> None:
        await self.store.call(discard_mo, key)

    async def expired(self, transport: str, older_than: float) -> list[tuple[MoPart, ...]]:
        before = utcnow() - timedelta(seconds=older_than)
        return await self.store.call(expired_mo, transport, before)
