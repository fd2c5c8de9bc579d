"""Store functions for receipts: keep each as received, then link it to its part and order.

`insert_receipt` is all that happens before the SMSC gets its deliver_sm_resp.
`apply_receipts` runs in the receipts step: it links `new` receipts to parts by
(transport, smsc id), moves parts and orders forward (never back) and queues the
status notice when an order becomes final. A receipt that arrives before its
submit_sm_resp was recorded simply stays `new` until the part exists; after
`orphan_after` seconds without a part it becomes `orphan` (kept, logged).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select, update

from bridge.inbound.receipts import next_part_state, order_outcome
from bridge.store.models import Order, OrderEvent, Part, Receipt
from bridge.store.orders import record_final
from bridge.transports.base import Receipt as ReceiptValue

log = logging.getLogger("bridge.receipts")

_receipt = Receipt.__table__  # type: ignore[attr-defined]
_part = Part.__table__  # type: ignore[attr-defined]
_order = Order.__table__  # type: ignore[attr-defined]
_event = OrderEvent.__table__  # type: ignore[attr-defined]


def insert_receipt(conn: Connection, receipt: ReceiptValue, now: datetime) -> None:
    conn.execute(
        insert(_receipt).values(
            transport=receipt.transport,
            smsc_id=receipt.message_id,
            state=str(receipt.state),
            error_code=receipt.error_code,
            done_at=receipt.done_at,
            raw=receipt.raw[:2000],
            received_at=now,
            status="new",
        )
    )


@dataclass(frozen=True, slots=True)
class Applied:
    applied: int
    orphaned: int
    finished_orders: tuple[str, ...]


def apply_receipts(conn: Connection, now: datetime, limit: int, orphan_after: float) -> Applied:
    rows = conn.execute(
        select(_receipt).where(_receipt.c.status == "new").order_by(_receipt.c.id).limit(limit)
    ).all()
    applied = orphaned = 0
    finished: list[str] = []
    for r in rows:
        part = conn.execute(
            select(_part).where(_part.c.transport == r.transport, _part.c.smsc_id == r.smsc_id)
        ).first()
        if part is None:
            if r.received_at <= now - timedelta(seconds=orphan_after):
                conn.execute(update(_receipt).where(_receipt.c.id == r.id).values(status="orphan"))
                log.warning(
                    "receipt %s from %s for unknown message id %s: orphaned",
                    r.id,
                    r.transport,
                    r.smsc_id,
                )
                orphaned += 1
            continue
        new_state = next_part_state(part.state, r.state)
        if new_state != part.state:
            conn.execute(
                update(_part)
                .where(_part.c.id == part.id)
                .values(state=new_state, error_code=r.error_code, updated_at=now)
            )
            conn.execute(
                insert(_event).values(
                    order_id=part.order_id,
                    at=now,
                    event="receipt",
                    detail=f"part {part.seq} ({r.smsc_id}): {r.state}"
                    + (f" err {r.error_code}" if r.error_code else ""),
                )
            )
        conn.execute(
            update(_receipt).where(_receipt.c.id == r.id).values(status="applied", part_id=part.id)
        )
        applied += 1
        if _settle_order(conn, part.order_id, now):
            finished.append(part.order_id)
    return Applied(applied, orphaned, tuple(finished))


def _settle_order(conn: Connection, order_id: str, now: datetime) -> bool:
    order = conn.execute(
        select(_order.c.status, _order.c.parts).where(_order.c.id == order_id)
    ).one()
    if order.status != "submitted":
        return False
    states = conn.execute(select(_part.c.state).where(_part.c.order_id == order_id)).scalars().all()
    outcome = order_outcome(states, order.parts)
    if outcome is None:
        return False
    reason = (
        "every part delivered" if outcome == "delivered" else "the network could not deliver a part"
    )
    return record_final(conn, order_id, now, outcome, reason)
