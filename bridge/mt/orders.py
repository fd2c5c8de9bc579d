"""Store functions for the order queue: claim due orders, record each attempt's outcome.

Claiming takes a lease: the claimed rows get `next_attempt_at = now + lease` and
`attempts + 1` in the claiming transaction, so no other worker (or instance) takes
them while the submit runs, and a crash simply lets the lease run out: the order is
due again (a rare duplicate SMS beats a lost one). On PostgreSQL the claim uses
`FOR UPDATE SKIP LOCKED`, so several instances share one queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, not_, or_, select, text, update

from bridge.db import prepared
from bridge.db.bulk import bulk_execute, bulk_insert
from bridge.db.core import table
from bridge.db.queue import Queue, claim
from bridge.mt.causes import Cause
from bridge.mt.status import FINAL_ORDER_STATUSES, OPEN_ORDER_STATUSES, OrderStatus
from bridge.mt.steps import Steps
from bridge.mt.submitted import Submitted, record_submitted, record_submitted_many
from bridge.mt.tables import OPEN_ORDERS, UNFINISHED_ORDERS, Mail, Order, OrderEvent
from bridge.tenants.tables import User

__all__ = ["OrderWork", "Submitted", "record_submitted", "record_submitted_many"]

_order = table(Order)
_event = table(OrderEvent)
_mail = table(Mail)
_user = table(User)


@dataclass(frozen=True, slots=True)
class OrderWork:
    """A claimed order, as dispatch needs it."""

    id: str
    recipient: str
    sender_id: str
    text: str
    encoding: str
    attempts: int
    created_at: datetime
    expires_at: datetime | None
    policy: dict[str, Any]
    priority: int = 0
    error: str = ""  # why the previous attempt did not succeed ("" on the first)


# Open orders by the predicate of the partial index ix_order_open, written literally so the
# planner uses it; express (priority 1) first: each lane is an in-order range scan.
_QUEUE = Queue(
    _order,
    text(f'"order".{OPEN_ORDERS}'),
    lanes=(_order.c.priority == 1, _order.c.priority == 0),
    touch=("updated_at",),
    columns=tuple(f.name for f in fields(OrderWork)),  # what dispatch needs, no more
)


def claim_orders(
    conn: Connection,
    now: datetime,
    limit: int,
    lease: float,
    skip: Sequence[tuple[str, tuple[str, ...]]] = (),
) -> list[OrderWork]:
    """Claim up to `limit` due orders, express first, then oldest due first.

    A select per priority (express 1, normal 0), each an in-order range scan of the
    partial index ix_order_open, so a claim costs the same with 10 or 100,000 waiting;
    the two go as one statement (`bridge.db.queue`), read one after the other.
    `skip` leaves out the orders of routes whose SMSC has no room now: each entry is a
    route's prefix digits and the prefix digits of the routes before it (a number
    belongs to the first route whose prefix it starts with).
    """
    not_skipped = [not_(_route_match(prefix, earlier)) for prefix, earlier in skip]
    rows = claim(conn, _QUEUE, now, limit, lease, not_skipped)
    return [
        OrderWork(
            id=r.id,
            recipient=r.recipient,
            sender_id=r.sender_id,
            text=r.text,
            encoding=r.encoding,
            attempts=r.attempts + 1,
            created_at=r.created_at,
            expires_at=r.expires_at,
            policy=r.policy or {},
            priority=r.priority,
            error=r.error or "",
        )
        for r in rows
    ]


def _route_match(prefix: str, earlier: tuple[str, ...]) -> Any:
    """SQL: the recipient belongs to the route with `prefix` (and none of `earlier`)."""
    match = _order.c.recipient.startswith("+" + prefix, autoescape=True)
    if not earlier:
        return match
    return and_(match, *(~_order.c.recipient.startswith("+" + e, autoescape=True) for e in earlier))


def _event_row(order_id: str, at: datetime, event: str, detail: str) -> dict[str, Any]:
    return {"order_id": order_id, "at": at, "event": event, "detail": detail[:2000]}


_SET_PARKED = (  # built once: a parked order's claim did not count as an attempt
    update(_order)
    .where(
        _order.c.id == bindparam("k_id"), or_(*(_order.c.status == s for s in OPEN_ORDER_STATUSES))
    )
    .values(next_attempt_at=bindparam("k_at"), attempts=_order.c.attempts - 1)
)
_SET_PARKED_UNDER_CLAIM = (  # the same, while the order is still under the claim `k_claim`
    update(_order)
    .where(
        _order.c.id == bindparam("k_id"),
        or_(*(_order.c.status == s for s in OPEN_ORDER_STATUSES)),
        _order.c.attempts == bindparam("k_claim"),
    )
    .values(next_attempt_at=bindparam("k_at"), attempts=_order.c.attempts - 1)
)


def record_parked(conn: Connection, parked: Sequence[tuple[str, datetime, int | None]]) -> None:
    """Orders claimed but not attempted (their SMSC or sender rate had no room): due again
    at the given time, and the claim does not count as an attempt; each (order id, due
    time, the attempt count its claim gave it) changed only while still under that claim
    (`under_claim`; None: whoever holds it)."""
    free = [{"k_id": i, "k_at": at} for i, at, claim in parked if claim is None]
    fenced = [
        {"k_id": i, "k_at": at, "k_claim": claim} for i, at, claim in parked if claim is not None
    ]
    bulk_execute(conn, _SET_PARKED, free)
    bulk_execute(conn, _SET_PARKED_UNDER_CLAIM, fenced)


def under_claim(attempt: int | None) -> list[Any]:
    """SQL: the order is still under the claim that counted attempt `attempt` (None: no
    condition). A claim counts an attempt, so the next claim of the order, by another
    instance after this one's lease ran out, has another count: what a claim that lost
    its lease (its instance frozen, or stalled, past it) writes late must not move the
    new claim's due time (the order would be claimed a third time while the second is
    being sent) nor undo its count."""
    return [] if attempt is None else [_order.c.attempts == attempt]


# Built once; the unfinished orders by the predicate of the partial index
# ix_order_unfinished, written literally so the planner uses it (not the recipient's history).
_OTHERS_PENDING = (
    select(_order.c.id)
    .where(
        _order.c.recipient == bindparam("recipient"),
        _order.c.sender_id == bindparam("sender_id"),
        _order.c.id != bindparam("order_id"),
        text(f'"order".{UNFINISHED_ORDERS}'),
    )
    .limit(5)
)


def others_pending(conn: Connection, order_id: str, recipient: str, sender_id: str) -> list[str]:
    """Other orders from `sender_id` to `recipient` that an SMSC may still hold (not final).

    A resubmit with replace_if_present_flag would replace such a message at the SMSC.
    """
    values = {"recipient": recipient, "sender_id": sender_id, "order_id": order_id}
    return [r.id for r in conn.execute(_OTHERS_PENDING, values)]


def record_deferred(
    conn: Connection,
    order_id: str,
    now: datetime,
    next_at: datetime,
    reason: str,
    claim: int | None = None,
) -> None:
    """A temporary failure: try again at `next_at` (if still under the claim with attempt
    count `claim`, `under_claim`; the attempt's event is written either way)."""
    conn.execute(
        update(_order)
        .where(
            _order.c.id == order_id,
            _order.c.status.in_(OPEN_ORDER_STATUSES),
            *under_claim(claim),
        )
        .values(
            status=OrderStatus.DEFERRED,
            next_attempt_at=next_at,
            updated_at=now,
            error=reason[:2000],
        )
    )
    conn.execute(
        insert(_event),
        [
            _event_row(
                order_id,
                now,
                OrderStatus.DEFERRED,
                f"{reason}; next attempt {next_at:%Y-%m-%d %H:%M:%S}Z",
            )
        ],
    )


_INSERT_EVENT = insert(_event)
_SET_FINAL = (  # built once, like _SET_SUBMITTED
    update(_order)
    .where(
        _order.c.id == bindparam("f_id"),
        *(_order.c.status != s for s in sorted(FINAL_ORDER_STATUSES)),
    )
    .values(
        status=bindparam("f_status"),
        final_at=bindparam("f_at"),
        updated_at=bindparam("f_at"),
        error=bindparam("f_error"),
        cause=bindparam("f_cause"),
        cause_code=bindparam("f_code"),
    )
)


@dataclass(frozen=True, slots=True)
class Finished:
    """The orders that became final in one call, and how many notices their final steps
    queued (status mails, DSNs, list reports: the mailer has work only when there are some)."""

    ids: tuple[str, ...] = ()
    notices: int = 0


def _cause_values(cause: Cause | None) -> dict[str, Any]:
    if cause is None:
        return {"f_cause": "", "f_code": None}
    return {"f_cause": cause.kind.value, "f_code": cause.code}


def record_final(
    conn: Connection,
    order_id: str,
    now: datetime,
    status: str,
    reason: str,
    *,
    steps: Steps,
    cause: Cause | None = None,
) -> bool:
    """Move an open or submitted order to a final status (once) and run the final `steps`.

    `cause`: why it failed, kept for its DSN's status code (None: not known in a word)."""
    if status not in FINAL_ORDER_STATUSES:
        raise ValueError(f"{status!r} is not a final order status")
    values = {"f_id": order_id, "f_status": status, "f_at": now, "f_error": reason[:2000]}
    values |= _cause_values(cause)
    if prepared.execute(conn, _SET_FINAL, values) == 0:
        return False
    conn.execute(_INSERT_EVENT, [_event_row(order_id, now, status, reason)])
    steps.run_final(conn, [order_id], now)
    return True


_SET_FINAL_MANY = (  # built once: the orders of one status and reason, those still open
    update(_order)
    .where(
        _order.c.id.in_(bindparam("f_ids", expanding=True)),
        *(_order.c.status != s for s in sorted(FINAL_ORDER_STATUSES)),
    )
    .values(
        status=bindparam("f_status"),
        final_at=bindparam("f_at"),
        updated_at=bindparam("f_at"),
        error=bindparam("f_error"),
        cause=bindparam("f_cause"),
        cause_code=bindparam("f_code"),
    )
    .returning(_order.c.id)
)


def record_final_many(
    conn: Connection,
    finals: Sequence[tuple[str, str, str]],
    now: datetime,
    *,
    steps: Steps,
    history: Sequence[dict[str, Any]] = (),
    cause: Cause | None = None,
) -> Finished:
    """`record_final` for several (order id, status, reason): one update per status and
    reason (only the orders not final yet: another transaction may have finished one), one
    history insert and one run of the final `steps`; returns the ids it finished, in order,
    with the number of notices the final steps queued.

    `history`: order_event rows the caller has for this moment (a receipts round's lines),
    written in the same insert, before the final lines. `cause`: why they failed (every
    one of them), as for `record_final`."""
    groups: dict[tuple[str, str], list[str]] = {}
    for order_id, status, reason in finals:
        if status not in FINAL_ORDER_STATUSES:
            raise ValueError(f"{status!r} is not a final order status")
        groups.setdefault((status, reason), []).append(order_id)
    finished: set[str] = set()
    for (status, reason), ids in groups.items():
        values = {"f_ids": ids, "f_status": status, "f_at": now, "f_error": reason[:2000]}
        values |= _cause_values(cause)
        finished.update(r.id for r in prepared.fetch(conn, _SET_FINAL_MANY, values))
    done = [order_id for order_id, _, _ in finals if order_id in finished]
    rows = list(history)
    rows += [_event_row(i, now, status, reason) for i, status, reason in finals if i in finished]
    bulk_insert(conn, _event, rows)
    return Finished(tuple(done), steps.run_final(conn, done, now))


def record_attempt_events(
    conn: Connection, order_id: str, now: datetime, events: Sequence[tuple[str, str]]
) -> None:
    """Append (event, detail) lines to the order's history: why an attempt happened and what
    each transport answered (throttled, not bound, unknown outcome, failover ...)."""
    if events:
        conn.execute(
            insert(_event),
            [{"order_id": order_id, "at": now, "event": e, "detail": d[:2000]} for e, d in events],
        )


def record_held(
    conn: Connection, order_id: str, now: datetime, error: str, claim: int | None = None
) -> None:
    """An unexpected error: park the order for an operator, keeping the traceback (if
    still under the claim with attempt count `claim`, `under_claim`)."""
    conn.execute(
        update(_order)
        .where(
            _order.c.id == order_id, _order.c.status.in_(OPEN_ORDER_STATUSES), *under_claim(claim)
        )
        .values(status=OrderStatus.HELD, updated_at=now, error=error[-4000:])
    )
    conn.execute(
        insert(_event),
        [_event_row(order_id, now, OrderStatus.HELD, error.splitlines()[-1] if error else "")],
    )


def release_held(conn: Connection, order_id: str, now: datetime, by: str = "operator") -> bool:
    """Put a held order back in the queue (after an operator fixed the cause); `by` who,
    for its history."""
    result = conn.execute(
        update(_order)
        .where(_order.c.id == order_id, _order.c.status == OrderStatus.HELD)
        .values(status=OrderStatus.QUEUED, next_attempt_at=now, updated_at=now)
    )
    if result.rowcount:
        conn.execute(insert(_event), [_event_row(order_id, now, "released", f"by {by}")])
    return bool(result.rowcount)


_HISTORY = (
    select(_event.c.at, _event.c.event, _event.c.detail)
    .where(_event.c.order_id == bindparam("order_id"))
    .order_by(_event.c.id)
)


def order_history(conn: Connection, order_id: str) -> list[tuple[datetime, str, str]]:
    """An order's history lines, oldest first: (at, event, detail)."""
    return [
        (r.at, r.event, r.detail) for r in prepared.fetch(conn, _HISTORY, {"order_id": order_id})
    ]


def list_orders(conn: Connection, status: str | None, limit: int) -> list[dict[str, Any]]:
    query = (
        select(
            _order.c.id,
            _order.c.status,
            _order.c.recipient,
            _order.c.parts,
            _order.c.attempts,
            _order.c.created_at,
            _order.c.error,
            _user.c.address.label("sender"),
        )
        .select_from(_order.join(_user, _order.c.user_id == _user.c.id))
        .order_by(_order.c.created_at.desc(), _order.c.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(_order.c.status == status)
    return [dict(r._mapping) for r in conn.execute(query)]


def count_by_status(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(_order.c.status, func.count()).group_by(_order.c.status)).all()
    return {r[0]: int(r[1]) for r in rows}


# Newest first, which the index on (user_id, created_at) gives in order: a plan that
# reads the table instead must read all of it and sort, so none does, even planned once
# for any window and cap (unordered, such a plan expected its rows early in the table,
# and read the whole history of a table whose rows lie in no order of time).
_ORDERS_SINCE = (
    select(_order.c.id)
    .where(_order.c.user_id == bindparam("user_id"), _order.c.created_at >= bindparam("since"))
    .order_by(_order.c.created_at.desc())
    .limit(bindparam("cap"))
    .subquery()
)
_COUNT_ORDERS_SINCE = select(func.count()).select_from(_ORDERS_SINCE)


def count_orders_since(conn: Connection, user_id: int, since: datetime, cap: int) -> int:
    """The user's orders created since `since`, counted up to `cap` (rate limits: whether
    a limit is passed needs no more, and a sender of thousands a day is not counted in
    full at every RCPT)."""
    values = {"user_id": user_id, "since": since, "cap": cap}
    return int(prepared.fetch(conn, _COUNT_ORDERS_SINCE, values)[0][0] or 0)  # at each RCPT
