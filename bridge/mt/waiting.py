"""Why an open order waits and until when, for `mailsms orders --show ID`.

Read from the order's row (status, next_attempt_at, attempts, its policy's send_at and
quiet hours) and its last history lines: scheduled by send_at, held back by the
recipient's quiet hours, deferred after an error (the SMSC throttling, or another
temporary failure), waiting for room at the SMSC or the sender's rate, claimed by a
dispatcher (in flight, or its bridge stopped: due again when the lease runs out), held
for an operator, or due now.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from bridge.db.core import table
from bridge.mt.status import OrderStatus
from bridge.mt.tables import Order, OrderEvent

_order = table(Order)
_event = table(OrderEvent)


class WaitReason(enum.StrEnum):
    DUE = "due now, waiting for a dispatcher"
    SEND_AT = "scheduled (send_at)"
    QUIET_HOURS = "the recipient's quiet hours"
    THROTTLED = "throttled by the SMSC"
    DEFERRED = "deferred after an error"
    NO_ROOM = "waiting for room at the SMSC or the sender's rate"
    CLAIMED = "claimed by a dispatcher (being sent; due again when the lease runs out)"
    HELD = "held for an operator"


@dataclass(frozen=True, slots=True)
class Waiting:
    """When an open order is due and why it waits until then."""

    due: datetime | None  # None: never by itself (held)
    reason: WaitReason
    detail: str = ""

    def line(self, now: datetime) -> str:
        if self.due is None:
            when = "not due (held)"
        elif self.due <= now:
            when = f"due since {self.due:%Y-%m-%d %H:%M:%S}Z"
        else:
            when = f"due {self.due:%Y-%m-%d %H:%M:%S}Z (in {_span(self.due - now)})"
        return f"waiting: {when}: {self.reason.value}" + (f": {self.detail}" if self.detail else "")


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def waiting(
    order: dict[str, Any], events: list[tuple[datetime, str, str]], now: datetime
) -> Waiting | None:
    """Why `order` (its row) waits, given its history `events` (oldest first); None when it is
    not waiting (submitted or final)."""
    status = order["status"]
    due: datetime = order["next_attempt_at"]
    if due.tzinfo is None:  # SQLite hands back naive UTC
        due = due.replace(tzinfo=UTC)
    if status == OrderStatus.HELD:
        lines = (order.get("error") or "").strip().splitlines()
        return Waiting(None, WaitReason.HELD, lines[-1][:200] if lines else "")
    if status not in (OrderStatus.QUEUED, OrderStatus.DEFERRED):
        return None
    policy = order.get("policy") or {}
    if status == OrderStatus.DEFERRED:
        last = max((i for i, e in enumerate(events) if e[1] == "deferred"), default=None)
        if due > now and last is not None:
            at = events[last][0]
            same_attempt = {e[1] for e in events if e[0] == at}
            reason = WaitReason.THROTTLED if "throttled" in same_attempt else WaitReason.DEFERRED
            return Waiting(due, reason, events[last][2][:300])
    if due <= now:
        return Waiting(due, WaitReason.DUE)
    send_at = _time(policy.get("send_at"))
    if send_at is not None and abs((due - send_at).total_seconds()) < 1 and order["attempts"] == 0:
        return Waiting(due, WaitReason.SEND_AT, f"send_at {policy['send_at']}")
    if policy.get("quiet_hours") and order["attempts"] == 0:
        return Waiting(due, WaitReason.QUIET_HOURS, f"quiet hours {policy['quiet_hours']}")
    if order["attempts"] == 0:
        return Waiting(due, WaitReason.NO_ROOM)
    return Waiting(due, WaitReason.CLAIMED, f"attempt {order['attempts']}")


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def order_row(conn: Connection, order_id: str) -> dict[str, Any] | None:
    """The order's row as a dict, or None."""
    row = conn.execute(select(_order).where(_order.c.id == order_id)).first()
    return dict(row._mapping) if row is not None else None
