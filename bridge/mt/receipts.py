"""Store functions for receipts: keep each as received, then link it to its part and order.

`insert_receipts` is all that happens before the SMSC gets its deliver_sm_resp.
`apply_receipts` runs in the receipts step: it takes the oldest `new` receipts, matches
each to the most recent part with its id on its transport that was submitted before
the receipt arrived (SMSC ids are not unique: counters restart and wrap), moves parts
and orders forward (never back) and queues the status notice when an order becomes
final — set-based: a few statements per batch, not per receipt.

* A receipt that arrives before its submit_sm_resp was recorded stays `new` until the
  part exists. So that it cannot be matched to an older part with the same id in the
  meantime, the receipts of a transport wait while a submit to it that began before
  them is not recorded yet (`hold`, from the dispatcher).
* A receipt whose part cannot be matched (empty, shared or reused id: `parts.py`)
  becomes `unmatched`: kept and logged, never applied to another order.
* A receipt without a part submitted within `window` before it becomes `orphan` after
  `window` (kept, logged).
* `finish_unconfirmed` ends the submitted orders whose receipt deadline
  (`next_attempt_at`) has passed: "unconfirmed", with what is known (sent, no
  delivery report; the parts' last reports), and the notices their policy asks for.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    bindparam,
    func,
    insert,
    select,
    true,
    update,
)

from bridge.db import prepared
from bridge.db.bulk import bulk_insert, execute_together
from bridge.db.core import table
from bridge.mt.orders import Finished, record_final_many
from bridge.mt.parts import REUSED_WHILE_OPEN, mark_reused
from bridge.mt.receipt_states import next_part_state, order_outcome
from bridge.mt.status import OrderStatus, PartState, ReceiptStatus
from bridge.mt.steps import Steps
from bridge.mt.tables import Order, OrderEvent, Part, Receipt
from bridge.values import Receipt as ReceiptValue

log = logging.getLogger("bridge.receipts")

_receipt = table(Receipt)
_part = table(Part)
_order = table(Order)
_event = table(OrderEvent)

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
    .values(status=ReceiptStatus.APPLIED, part_id=bindparam("r_part"))
)
_SET_STATUS = (
    update(_receipt).where(_receipt.c.id == bindparam("r_id")).values(status=bindparam("r_status"))
)
# The most recent part with the receipt's id on its transport submitted before it arrived.
_NEWEST_PART = (
    select(_part.c.id)
    .where(
        _part.c.transport == _receipt.c.transport,
        _part.c.smsc_id == _receipt.c.smsc_id,
        _part.c.submitted_at <= _receipt.c.received_at,
    )
    .order_by(_part.c.submitted_at.desc(), _part.c.id.desc())
    .limit(1)
    .correlate(_receipt)
    .scalar_subquery()
)


# New receipts oldest first, in the order of ix_receipt_due (status, received_at, then the
# row id): the reads below take them from that index whether or not the database has
# statistics. Ordered by id alone, SQLite with statistics (after ANALYZE) reads the whole
# table in id order instead, every receipt ever kept, to find the few new ones.
_ARRIVAL = (_receipt.c.received_at, _receipt.c.id)
_siblings = _part.alias("siblings")
_PART_ROWS = (  # how many part rows the part's order has
    select(func.count()).where(_siblings.c.order_id == _part.c.order_id).scalar_subquery()
)
_RECEIPT_COLUMNS = (
    _receipt.c.id,
    _receipt.c.transport,
    _receipt.c.smsc_id,
    _receipt.c.state,
    _receipt.c.error_code,
    _receipt.c.received_at,
)
_PART_AND_ORDER_COLUMNS = (  # a receipt's part, its order's status and how many parts it has
    _part.c.id.label("part_id"),
    _part.c.state.label("part_state"),
    _part.c.order_id,
    _part.c.seq,
    _part.c.submitted_at,
    _part.c.matchable,
    REUSED_WHILE_OPEN.label("reused"),
    _order.c.status.label("order_status"),
    _order.c.parts.label("order_parts"),
    _PART_ROWS.label("part_rows"),
)
_MATCHED_SQLITE = (  # new receipts with their part and its order
    select(*_RECEIPT_COLUMNS, *_PART_AND_ORDER_COLUMNS)
    .select_from(
        _receipt.join(_part, _part.c.id == _NEWEST_PART).join(
            _order, _order.c.id == _part.c.order_id
        )
    )
    .where(_receipt.c.status == ReceiptStatus.NEW)
    .order_by(*_ARRIVAL)
    .limit(bindparam("limit"))
)
# PostgreSQL: the same rows, each receipt joined LATERAL to its newest part (with its
# order). Written as for SQLite, the statement let PostgreSQL read the whole history
# under a generic plan (psycopg prepares a statement at its fifth run, and the server may
# then plan it once for any parameters): it scanned every receipt and joined every part,
# 16 ms a round with 20,000 SMS of history and 675 ms with 200,000
# (tests/integration/test_hot_read_plans.py). A LATERAL subquery with LIMIT 1 is one
# index seek per receipt, whatever the plan (its status and limit written into the SQL
# by `bridge.db.prepared`).
_NEWEST_PART_AND_ORDER = (
    select(*_PART_AND_ORDER_COLUMNS)
    .select_from(_part.join(_order, _order.c.id == _part.c.order_id))
    .where(
        _part.c.transport == _receipt.c.transport,
        _part.c.smsc_id == _receipt.c.smsc_id,
        _part.c.submitted_at <= _receipt.c.received_at,
    )
    .order_by(_part.c.submitted_at.desc(), _part.c.id.desc())
    .limit(1)
    .lateral("newest")
)
_MATCHED_POSTGRES = (
    select(*_RECEIPT_COLUMNS, *_NEWEST_PART_AND_ORDER.c)
    .select_from(_receipt.join(_NEWEST_PART_AND_ORDER, true()))
    .where(_receipt.c.status == ReceiptStatus.NEW)
    .order_by(*_ARRIVAL)
    .limit(bindparam("limit"))
)
_MATCHED: dict[str, Select[Any]] = {"sqlite": _MATCHED_SQLITE, "postgresql": _MATCHED_POSTGRES}
_OLD_NEW = (
    select(_receipt.c.id, _receipt.c.transport, _receipt.c.smsc_id)
    .where(_receipt.c.status == ReceiptStatus.NEW, _receipt.c.received_at <= bindparam("cutoff"))
    .order_by(*_ARRIVAL)
    .limit(bindparam("limit"))
)
_OPEN_PARTS = (  # the touched orders still open, each with its parts' states (one read)
    select(_order.c.id, _order.c.parts, _part.c.state)
    .select_from(_order.outerjoin(_part, _part.c.order_id == _order.c.id))
    .where(
        _order.c.id.in_(bindparam("ids", expanding=True)),
        _order.c.status == OrderStatus.SUBMITTED,
    )
)
_DUE_UNCONFIRMED = (
    select(_order.c.id, _order.c.transport, _order.c.next_attempt_at)
    .where(_order.c.status == OrderStatus.SUBMITTED, _order.c.next_attempt_at <= bindparam("now"))
    .order_by(_order.c.next_attempt_at)
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
        "status": ReceiptStatus.NEW,
    }


def insert_receipt(conn: Connection, receipt: ReceiptValue, now: datetime) -> None:
    conn.execute(_INSERT, [_row(receipt, now)])


def insert_receipts(conn: Connection, receipts: Sequence[tuple[ReceiptValue, datetime]]) -> None:
    """Several receipts in one statement (the inbox's group commit)."""
    bulk_insert(conn, _receipt, [_row(r, at) for r, at in receipts])


@dataclass(frozen=True, slots=True)
class Applied:
    applied: int
    orphaned: int
    finished_orders: tuple[str, ...]
    unmatched: int = 0
    unconfirmed: int = 0
    notices: int = 0  # queued by the final steps of the finished orders


def apply_receipts(
    conn: Connection,
    now: datetime,
    limit: int,
    window: float,
    hold: Mapping[str, datetime] | None = None,
    *,
    steps: Steps,
    orphan: bool = True,
) -> Applied:
    """Apply up to `limit` new receipts; orphan the ones older than `window` seconds.

    `hold`: transport -> the start of its oldest submit not yet recorded; its receipts
    received since then wait (their part may be the one being recorded). `orphan`: look
    for receipts to orphan too (the running bridge does it once a second, not every round).
    """
    since = now - timedelta(seconds=window)
    rows = prepared.fetch(conn, _MATCHED[conn.dialect.name], {"limit": limit, "since": since})
    held = hold or {}
    reused: set[tuple[str, str]] = set()
    part_state: dict[int, str] = {}
    part_rows: dict[int, dict[str, Any]] = {}  # the last change per part
    events: list[dict[str, Any]] = []
    orders: dict[str, None] = {}  # touched orders, in order of appearance
    known: dict[str, _Known] = {}  # each order's parts read in this round
    applied: list[dict[str, Any]] = []
    unmatched: list[dict[str, Any]] = []
    for r in rows:
        seen = known.get(r.order_id)
        if seen is None:
            seen = known[r.order_id] = _Known(r.order_status, r.order_parts, r.part_rows, {})
        seen.states.setdefault(r.part_id, r.part_state)
        began = held.get(r.transport)
        if began is not None and _aware(r.received_at) >= began:
            continue  # a submit that began before it is being recorded: wait for it
        if (r.received_at - r.submitted_at).total_seconds() > window:
            continue  # only a part from long ago has this id: orphaned after the window
        if r.reused and (r.transport, r.smsc_id) not in reused:
            reused.add((r.transport, r.smsc_id))
            notes = mark_reused(conn, r.transport, r.smsc_id, r.submitted_at, since)
            events += [
                {"order_id": o, "at": now, "event": "receipts", "detail": line} for o, line in notes
            ]
        if not r.matchable or r.reused:
            unmatched.append({"r_id": r.id, "r_status": ReceiptStatus.UNMATCHED})
            log.warning(
                "receipt %s from %s for message id %r not applied: that id cannot be tied to "
                "one message (order %s part %d)",
                r.id,
                r.transport,
                r.smsc_id,
                r.order_id,
                r.seq,
            )
            continue
        applied.append({"r_id": r.id, "r_part": r.part_id})
        current = part_state.get(r.part_id, r.part_state)
        new_state = next_part_state(current, r.state)
        if new_state != current:
            part_state[r.part_id] = seen.states[r.part_id] = new_state
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
    execute_together(  # on PostgreSQL one statement at a steady load (a part, its receipt)
        conn,
        [(_SET_PART, list(part_rows.values())), (_SET_APPLIED, applied), (_SET_STATUS, unmatched)],
    )
    # The round's history lines go in with the final lines of the orders it finishes.
    finished = _settle_orders(conn, list(orders), now, steps, events, known)
    orphaned = _orphan(conn, since, limit) if orphan else 0
    return Applied(len(applied), orphaned, finished.ids, len(unmatched), 0, finished.notices)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(slots=True)
class _Known:
    """An order as a receipts round read it: its status, its parts and part rows, and the
    states of the part rows it read (after the round's receipts)."""

    status: str
    parts: int
    rows: int
    states: dict[int, str]

    def complete(self) -> bool:
        """Whether the round read every part row of the order (no need to read them again)."""
        return len(self.states) == self.rows


def _settle_orders(
    conn: Connection,
    order_ids: list[str],
    now: datetime,
    steps: Steps,
    history: list[dict[str, Any]],
    known: Mapping[str, _Known] | None = None,
) -> Finished:
    """Finish the orders whose parts now say so, writing `history` (the round's order_event
    rows) before their final lines; returns those that became final.

    `known`: orders whose every part row the round read (most SMS have one part), with
    their states: those are not read again."""
    if not order_ids:
        bulk_insert(conn, _event, history)
        return Finished()
    open_orders: dict[str, int] = {}
    states: dict[str, list[str]] = {}
    unknown = []
    for order_id in order_ids:
        seen = (known or {}).get(order_id)
        if seen is None or not seen.complete():
            unknown.append(order_id)
        elif seen.status == OrderStatus.SUBMITTED:
            open_orders[order_id] = seen.parts
            states[order_id] = list(seen.states.values())
    if unknown:
        for r in prepared.fetch(conn, _OPEN_PARTS, {"ids": unknown}):
            open_orders[r.id] = r.parts
            if r.state is not None:  # an order without part rows has none
                states.setdefault(r.id, []).append(r.state)
    finals: list[tuple[str, str, str]] = []
    for order_id in order_ids:
        if order_id not in open_orders:
            continue
        outcome = order_outcome(states.get(order_id, []), open_orders[order_id])
        if outcome is None:
            continue
        reason = (
            "every part delivered"
            if outcome == OrderStatus.DELIVERED
            else "the network could not deliver a part"
        )
        finals.append((order_id, outcome, reason))
    return record_final_many(conn, finals, now, steps=steps, history=history)


def _orphan(conn: Connection, cutoff: datetime, limit: int) -> int:
    """Mark `new` receipts older than the window as orphans (no part matched them in time)."""
    rows = prepared.fetch(conn, _OLD_NEW, {"cutoff": cutoff, "limit": limit})
    if not rows:
        return 0
    conn.execute(
        update(_receipt)
        .where(_receipt.c.id.in_([r.id for r in rows]))
        .values(status=ReceiptStatus.ORPHAN)
    )
    for r in rows:
        log.warning(
            "receipt %s from %s for unknown message id %s: orphaned", r.id, r.transport, r.smsc_id
        )
    return len(rows)


def finish_unconfirmed(conn: Connection, now: datetime, limit: int, *, steps: Steps) -> Finished:
    """End submitted orders past their receipt deadline as "unconfirmed"; returns their ids
    (and how many notices their final steps queued)."""
    due = prepared.fetch(conn, _DUE_UNCONFIRMED, {"now": now, "limit": limit})
    if not due:
        return Finished()
    parts: dict[str, list[Any]] = {}
    for p in conn.execute(
        select(_part.c.order_id, _part.c.seq, _part.c.state, _part.c.matchable)
        .where(_part.c.order_id.in_([o.id for o in due]))
        .order_by(_part.c.order_id, _part.c.seq)
    ):
        parts.setdefault(p.order_id, []).append(p)
    reasons = {o.id: unconfirmed_reason(o.transport or "", parts.get(o.id, [])) for o in due}
    finished = record_final_many(
        conn, [(i, OrderStatus.UNCONFIRMED, r) for i, r in reasons.items()], now, steps=steps
    )
    for order_id in finished.ids:
        log.warning("%s: unconfirmed: %s", order_id, reasons[order_id])
    return finished


def unconfirmed_reason(transport: str, parts: Sequence[Any]) -> str:
    """What is known about an order that got no final report in time, in one line."""
    head = f"sent via {transport}, no delivery report"
    if not parts:
        return f"{head} (its parts were not recorded)"
    if not all(p.matchable for p in parts):
        return f"{head}: the SMSC's message ids cannot be tied to receipts (empty or not unique)"
    counts = Counter(
        "without report" if p.state == PartState.SUBMITTED else str(p.state) for p in parts
    )
    known = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return f"{head} before the receipt timeout (parts: {known})"
