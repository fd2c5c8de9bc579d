"""Store functions for receipts: keep each as received, then link it to its part and order.

`insert_receipts` is all that happens before the SMSC gets its deliver_sm_resp.
`apply_receipts` runs in the receipts step: it takes the oldest `new` receipts that
have a part (joined on transport and smsc id), moves parts and orders forward (never
back) and queues the status notice when an order becomes final — set-based: a few
statements per batch, not per receipt. A receipt that arrives before its
submit_sm_resp was recorded simply stays `new` until the part exists (it is not
selected, so unmatched receipts cannot hold up newer ones); after `orphan_after`
seconds without a part it becomes `orphan` (kept, logged).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, insert, select, update

from bridge.inbound.receipts import next_part_state, order_outcome
from bridge.store.models import Order, OrderEvent, Part, Receipt
from bridge.store.orders import record_final
from bridge.transports.base import Receipt as ReceiptValue

log = logging.getLogger("bridge.receipts")

_receipt = Receipt.__table__  # type: ignore[attr-defined]
_part = Part.__table__  # type: ignore[attr-defined]
_order = Order.__table__  # type: ignore[attr-defined]
_event = OrderEvent.__table__  # type: ignore[attr-defined]

# Built once: building a statement costs more CPU than SQLite running it.
_INSERT = insert(_receipt)
_SET_PART = (
    update(_part)
    .where(_part.c.id == bindparam("p_id"))
    .values(
        state=bindparam("p_state"), error_code=bindparam("p_error"), updated_at=bindparam("p_at")
    )
)
_SET_APPLIED = (
    update(_receipt)
    .where(_receipt.c.id == bindparam("r_id"))
    .values(status="applied", part_id=bindparam("r_part"))
)
_INSERT_EVENT = insert(_event)
_MATCHED = (
    select(
        _receipt.c.id,
        _receipt.c.smsc_id,
        _receipt.c.state,
        _receipt.c.error_code,
        _part.c.id.label("part_id"),
        _part.c.state.label("part_state"),
        _part.c.order_id,
        _part.c.seq,
    )
    .select_from(
        _receipt.join(
            _part,
            and_(_part.c.transport == _receipt.c.transport, _part.c.smsc_id == _receipt.c.smsc_id),
        )
    )
    .where(_receipt.c.status == "new")
    .order_by(_receipt.c.id)
    .limit(bindparam("limit"))
)
_UNMATCHED_OLD = (
    select(_receipt.c.id, _receipt.c.transport, _receipt.c.smsc_id)
    .where(
        _receipt.c.status == "new",
        _receipt.c.received_at <= bindparam("cutoff"),
        ~exists().where(
            _part.c.transport == _receipt.c.transport, _part.c.smsc_id == _receipt.c.smsc_id
        ),
    )
    .order_by(_receipt.c.id)
    .limit(bindparam("limit"))
)


def _row(receipt: ReceiptValue, now: datetime) -> dict[str, Any]:
    return {
        "transport": receipt.transport,
        "smsc_id": receipt.message_id,
        "state": str(receipt.state),
        "error_code": receipt.error_code,
        "done_at": receipt.done_at,
        "raw": receipt.raw[:2000],
        "received_at": now,
        "status": "new",
    }


def insert_receipt(conn: Connection, receipt: ReceiptValue, now: datetime) -> None:
    conn.execute(_INSERT, [_row(receipt, now)])


def insert_receipts(conn: Connection, receipts: Sequence[tuple[ReceiptValue, datetime]]) -> None:
    """Several receipts in one statement (the inbox's group commit)."""
    if receipts:
        conn.execute(_INSERT, [_row(r, at) for r, at in receipts])


@dataclass(frozen=True, slots=True)
class Applied:
    applied: int
    orphaned: int
    finished_orders: tuple[str, ...]


def apply_receipts(conn: Connection, now: datetime, limit: int, orphan_after: float) -> Applied:
    rows = conn.execute(_MATCHED, {"limit": limit}).all()
    part_state: dict[int, str] = {}
    part_rows: dict[int, dict[str, Any]] = {}  # the last change per part
    events: list[dict[str, Any]] = []
    orders: dict[str, None] = {}  # touched orders, in order of appearance
    for r in rows:
        current = part_state.get(r.part_id, r.part_state)
        new_state = next_part_state(current, r.state)
        if new_state != current:
            part_state[r.part_id] = new_state
            part_rows[r.part_id] = {
                "p_id": r.part_id,
                "p_state": new_state,
                "p_error": r.error_code,
                "p_at": now,
            }
            detail = f"part {r.seq} ({r.smsc_id}): {r.state}"
            if r.error_code:
                detail += f" err {r.error_code}"
            events.append({"order_id": r.order_id, "at": now, "event": "receipt", "detail": detail})
        orders[r.order_id] = None
    if rows:
        if part_rows:
            conn.execute(_SET_PART, list(part_rows.values()))
            conn.execute(_INSERT_EVENT, events)
        conn.execute(_SET_APPLIED, [{"r_id": r.id, "r_part": r.part_id} for r in rows])
    finished = _settle_orders(conn, list(orders), now)
    orphaned = _orphan(conn, now - timedelta(seconds=orphan_after), limit)
    return Applied(len(rows), orphaned, tuple(finished))


def _settle_orders(conn: Connection, order_ids: list[str], now: datetime) -> list[str]:
    """Finish the orders whose parts now say so; returns those that became final."""
    if not order_ids:
        return []
    open_orders = {
        r.id: r.parts
        for r in conn.execute(
            select(_order.c.id, _order.c.parts).where(
                _order.c.id.in_(order_ids), _order.c.status == "submitted"
            )
        )
    }
    if not open_orders:
        return []
    states: dict[str, list[str]] = {}
    for r in conn.execute(
        select(_part.c.order_id, _part.c.state).where(_part.c.order_id.in_(list(open_orders)))
    ):
        states.setdefault(r.order_id, []).append(r.state)
    finished: list[str] = []
    for order_id in order_ids:
        if order_id not in open_orders:
            continue
        outcome = order_outcome(states.get(order_id, []), open_orders[order_id])
        if outcome is None:
            continue
        reason = (
            "every part delivered"
            if outcome == "delivered"
            else "the network could not deliver a part"
        )
        if record_final(conn, order_id, now, outcome, reason):
            finished.append(order_id)
    return finished


def _orphan(conn: Connection, cutoff: datetime, limit: int) -> int:
    """Mark `new` receipts without a part that are older than the TTL as orphans."""
    rows = conn.execute(_UNMATCHED_OLD, {"cutoff": cutoff, "limit": limit}).all()
    if not rows:
        return 0
    conn.execute(
        update(_receipt).where(_receipt.c.id.in_([r.id for r in rows])).values(status="orphan")
    )
    for r in rows:
        log.warning(
            "receipt %s from %s for unknown message id %s: orphaned", r.id, r.transport, r.smsc_id
        )
    return len(rows)
