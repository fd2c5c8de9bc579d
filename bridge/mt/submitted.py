"""Store functions for orders the SMSC accepted: their parts, status, receipt deadline, history.

An SMS the SMSC accepted is recorded as submitted whatever ids it got (`bridge/db/
parts.py` says which parts receipts can be tied to). The order's `next_attempt_at`
becomes its receipt deadline: when no final report has come by then, the receipts step
ends it as "unconfirmed" (`bridge/mt/receipts.py`). `record_submitted_bare` is the
last resort when the full record fails: the status alone, so that an accepted SMS is
never submitted again because its bookkeeping failed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, insert, or_, select, update

from bridge.db.bulk import bulk_execute, insert_together
from bridge.db.core import table
from bridge.mt.parts import part_rows, unmatchable_events
from bridge.mt.status import OPEN_ORDER_STATUSES, OrderStatus
from bridge.mt.steps import Steps
from bridge.mt.tables import Order, OrderEvent, Part

log = logging.getLogger("bridge.mt.dispatch")

_order = table(Order)
_event = table(OrderEvent)
_part = table(Part)

# Without a deadline from the transport: the default validity (48 h) plus one hour.
DEFAULT_RECEIPT_WAIT = timedelta(hours=49)


@dataclass(frozen=True, slots=True)
class Submitted:
    """An order whose parts the SMSC accepted, with its history lines of this attempt."""

    order_id: str
    transport: str
    message_ids: tuple[str, ...]
    events: tuple[tuple[str, str], ...] = ()  # written before the "submitted" line
    submitted_at: datetime | None = None  # when the submit began (default: when recorded)
    receipt_due: datetime | None = None  # no final report by then: "unconfirmed"


def _event_row(order_id: str, at: datetime, event: str, detail: str) -> dict[str, Any]:
    return {"order_id": order_id, "at": at, "event": event, "detail": detail[:2000]}


_INSERT_EVENT = insert(_event)
_SET_SUBMITTED = (  # built once: statement building costs more CPU than the UPDATE
    update(_order)
    .where(
        _order.c.id == bindparam("o_id"), or_(*(_order.c.status == s for s in OPEN_ORDER_STATUSES))
    )
    .values(
        status=OrderStatus.SUBMITTED,
        transport=bindparam("o_transport"),
        parts=bindparam("o_parts"),
        updated_at=bindparam("o_at"),
        next_attempt_at=bindparam("o_due"),
        error="",
    )
)


def record_submitted(
    conn: Connection,
    order_id: str,
    now: datetime,
    transport: str,
    message_ids: tuple[str, ...],
    *,
    steps: Steps,
) -> None:
    """All parts were accepted by the SMSC: store them and mark the order submitted."""
    record_submitted_many(conn, now, [Submitted(order_id, transport, message_ids)], steps=steps)


def record_submitted_many(
    conn: Connection,
    now: datetime,
    orders: Sequence[Submitted],
    *,
    steps: Steps,
) -> list[str]:
    """Several submitted orders at once: statuses, parts and history in a few statements,
    then the submitted `steps` (reply assignments); returns the ids it recorded.

    Only orders still waiting to be sent are recorded. A record can run twice: when the
    connection is lost while its commit is under way (a failover), the commit may have
    gone through although the bridge saw an error, and the record is tried again. That
    second run must not store the parts again (an order with two open parts for one
    SMS would never be delivered), so parts, history and steps follow the status update,
    for the orders it moved.
    """
    if not orders:
        return []
    default_due = now + DEFAULT_RECEIPT_WAIT
    moved = bulk_execute(
        conn,
        _SET_SUBMITTED,
        [
            {
                "o_id": o.order_id,
                "o_transport": o.transport,
                "o_parts": len(o.message_ids),
                "o_at": now,
                "o_due": o.receipt_due or default_due,
            }
            for o in orders
        ],
    )
    if moved != len(orders):  # some were recorded before (or are gone): keep the ones moved
        orders = _moved_now(conn, orders, now)
        if not orders:
            return []
    rows = [
        row
        for o in orders
        for row in part_rows(o.order_id, o.transport, o.message_ids, o.submitted_at or now, now)
    ]
    notes = unmatchable_events(rows)
    events = [_event_row(o.order_id, now, e, d) for o in orders for e, d in o.events]
    events += [
        _event_row(
            o.order_id, now, OrderStatus.SUBMITTED, f"via {o.transport}, {_ids(o.message_ids)}"
        )
        for o in orders
    ]
    events += [_event_row(order_id, now, "receipts", line) for order_id, line in notes]
    insert_together(conn, [(_part, rows), (_event, events)])
    ids = [o.order_id for o in orders]
    steps.run_submitted(conn, ids, now)
    return ids


def _moved_now(conn: Connection, orders: Sequence[Submitted], now: datetime) -> list[Submitted]:
    """The orders the status update of this transaction moved (it stamped them `now`)."""
    found = conn.execute(
        select(_order.c.id).where(
            _order.c.id.in_([o.order_id for o in orders]),
            _order.c.status == OrderStatus.SUBMITTED,
            _order.c.updated_at == now,
        )
    )
    moved = set(found.scalars())
    for o in orders:
        if o.order_id not in moved:
            log.warning(
                "%s: accepted by %s as %s, but it no longer waits to be sent (recorded "
                "already, or cancelled or deleted meanwhile): not recorded again",
                o.order_id,
                o.transport,
                ",".join(i or '""' for i in o.message_ids),
            )
    return [o for o in orders if o.order_id in moved]


def record_submitted_bare(conn: Connection, o: Submitted, now: datetime, why: str) -> bool:
    """The last resort: only the order's status (no parts), so it is never sent again.

    Receipts for it cannot be matched (it has no parts); the receipt timeout ends it.
    False when the order is no longer waiting to be sent (gone, or recorded already).
    """
    result = conn.execute(
        _SET_SUBMITTED,
        {
            "o_id": o.order_id,
            "o_transport": o.transport,
            "o_parts": len(o.message_ids),
            "o_at": now,
            "o_due": o.receipt_due or now + DEFAULT_RECEIPT_WAIT,
        },
    )
    if not result.rowcount:
        return False
    line = f"via {o.transport}, {_ids(o.message_ids)}; its parts could not be recorded: {why}"
    conn.execute(_INSERT_EVENT, [_event_row(o.order_id, now, OrderStatus.SUBMITTED, line)])
    return True


def _ids(message_ids: Sequence[str]) -> str:
    return "ids " + ",".join(i or '""' for i in message_ids)
