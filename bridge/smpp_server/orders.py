"""What the SMPP server writes and reads of orders: commit submits, query_sm, cancel_sm.

`commit_submits` is the group-committed write of submit_sm (`Store.grouped`): each
message becomes a mail with one order through `bridge.mt.mails.insert_mails`, the same
rows the SMTP intake writes, so dispatch, routing, receipts and reports treat it alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, select

from bridge.db.core import table
from bridge.mt.mails import NewMail, insert_mails
from bridge.mt.orders import record_final
from bridge.mt.tables import Order
from bridge.outcomes.steps import STEPS

_order = table(Order)

# An order's status -> SMPP 3.4 message_state (query_sm_resp).
MESSAGE_STATES: Final[dict[str, int]] = {
    "queued": 1,
    "deferred": 1,
    "submitted": 1,
    "held": 1,
    "delivered": 2,
    "expired": 3,
    "undeliverable": 5,
    "unconfirmed": 7,
    "failed": 8,
}
CANCELLABLE: Final = ("queued", "deferred", "held")


def commit_submits(conn: Connection, mails: list[NewMail]) -> list[str]:
    """Write the messages (one transaction); per message the id of its order."""
    insert_mails(conn, mails, checked=True)
    return [m.orders[0].id for m in mails]


@dataclass(frozen=True, slots=True)
class OrderState:
    status: str
    updated_at: datetime
    final: bool


def _own(policy: Any, system_id: str) -> bool:
    smpp = (policy or {}).get("smpp") if isinstance(policy, dict) else None
    return isinstance(smpp, dict) and smpp.get("system_id") == system_id


def order_state(conn: Connection, order_id: str, system_id: str) -> OrderState | None:
    """The state of an order this account submitted (None: not one of its orders)."""
    r = conn.execute(
        select(_order.c.status, _order.c.updated_at, _order.c.policy).where(_order.c.id == order_id)
    ).first()
    if r is None or not _own(r.policy, system_id):
        return None
    final = MESSAGE_STATES.get(r.status, 1) != 1
    return OrderState(r.status, r.updated_at, final)


def cancel_order(conn: Connection, order_id: str, system_id: str, now: datetime) -> bool:
    """End an order of this account that has not been submitted yet (cancel_sm)."""
    r = conn.execute(
        select(_order.c.status, _order.c.policy).where(_order.c.id == order_id)
    ).first()
    if r is None or not _own(r.policy, system_id) or r.status not in CANCELLABLE:
        return False
    return record_final(conn, order_id, now, "failed", "cancelled by the SMPP client", steps=STEPS)
