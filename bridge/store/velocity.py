"""SMS pumping across mails, decided in the commit: hold the orders, alert the customer's admin.

`hold_pumping(conn, mails)` runs inside the intake's commit transaction, before the
mails are written. For each mail that carries a `VelocityCheck` it counts the distinct
numbers the customer's orders went to within the window — per prefix of the mail's
numbers, and over the watched prefixes — together with the earlier mails of the same
commit. A mail that passes a limit gets its orders under that prefix (or to watched
destinations) written as `held`, with the reason in `error`; they are not sent until
an operator releases them (`mailsms held release`). The first hold of a customer
within a window queues one `velocity_hold` notice to its admin (else its postmaster,
else the bridge's postmaster) and logs a warning. Operators list, release or refuse
held orders with `held_orders`, `release_orders` and `refuse_orders`.

Each count is one range query on the `order.recipient` index, bounded by LIMIT.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, select

from bridge.intake.velocity import HOLD_REASON, VelocityCheck, prefix_of, upper_bound, watched
from bridge.store.models import Customer, Order, User
from bridge.store.notices import queue_notice
from bridge.store.orders import record_final, release_held

if TYPE_CHECKING:
    from bridge.store.intake import NewMail, NewOrder

log = logging.getLogger("bridge.intake")
_order = Order.__table__  # type: ignore[attr-defined]
_user = User.__table__  # type: ignore[attr-defined]
_customer = Customer.__table__  # type: ignore[attr-defined]
OPERATOR_REFUSED = "refused by the operator (SMS pumping suspected); not sent"


def _of_customer(customer_id: int) -> ColumnElement[bool]:
    """The order belongs to a user of the customer. (`user_id + 0`: not through the user_id
    index, so the planner walks the recipient or status index, not all the customer's orders.)
    """
    users = select(_user.c.id).where(_user.c.customer_id == customer_id)
    belongs: ColumnElement[bool] = (_order.c.user_id + 0).in_(users)
    return belongs


def _numbers(
    conn: Connection, customer_id: int, prefix: str, since: datetime, limit: int
) -> set[str]:
    """Up to `limit` distinct numbers starting with `prefix` the customer sent to since `since`."""
    rows = conn.execute(
        select(_order.c.recipient)
        .distinct()
        .where(
            _order.c.recipient >= prefix,
            _order.c.recipient < upper_bound(prefix),
            _order.c.created_at >= since,
            _of_customer(customer_id),
        )
        .limit(limit)
    )
    return {r[0] for r in rows}


def _alerted(conn: Connection, customer_id: int, since: datetime) -> bool:
    """Did the customer have orders held for pumping since `since` (so it was alerted)?"""
    row = conn.execute(
        select(_order.c.id)
        .where(
            _order.c.status == "held",
            _order.c.created_at >= since,
            _order.c.error.like(f"{HOLD_REASON}%"),
            _of_customer(customer_id),
        )
        .limit(1)
    ).first()
    return row is not None


class _Batch:
    """Numbers of the commit's earlier mails, per customer and prefix (not yet in the table)."""

    def __init__(self) -> None:
        self.numbers: dict[tuple[int, str], set[str]] = {}
        self.alerted: set[int] = set()

    def seen(self, customer_id: int, prefix: str) -> set[str]:
        return self.numbers.setdefault((customer_id, prefix), set())


def _over(
    conn: Connection, check: VelocityCheck, prefixes: tuple[str, ...], limit: int, mine: set[str],
    since: datetime, batch: _Batch,
) -> int:  # fmt: skip
    """Distinct numbers under `prefixes` (table, commit, this mail), counted up to limit + 1."""
    found = set(mine)
    for prefix in prefixes:
        found |= batch.seen(check.customer_id, prefix)
        if len(found) > limit:
            break
        found |= _numbers(conn, check.customer_id, prefix, since, limit + 1)
        if len(found) > limit:
            break
    return len(found)


def _reasons(
    conn: Connection, mail: NewMail, check: VelocityCheck, batch: _Batch
) -> dict[str, str]:
    """{number of this mail: why its order is held} for the numbers past a limit."""
    since = mail.received_at - timedelta(seconds=check.window)
    direct = [o.recipient for o in mail.orders[: check.direct]]
    minutes = f"{check.window / 60:g} min"
    held: dict[str, str] = {}
    if check.numbers:
        groups: dict[str, set[str]] = {}
        for number in direct:
            groups.setdefault(prefix_of(number, check.suffix_digits), set()).add(number)
        for prefix, mine in groups.items():
            count = _over(conn, check, (prefix,), check.numbers, mine, since, batch)
            if count > check.numbers:
                reason = (
                    f"{HOLD_REASON}: more than {check.numbers} distinct numbers under "
                    f"{prefix}… within {minutes}"
                )
                held.update(dict.fromkeys(mine, reason))
    if check.watch_numbers:
        mine = {n for n in direct if watched(n, check.watch_prefixes)}
        if mine:
            count = _over(
                conn, check, check.watch_prefixes, check.watch_numbers, mine, since, batch
            )
            if count > check.watch_numbers:
                reason = (
                    f"{HOLD_REASON}: more than {check.watch_numbers} distinct numbers in "
                    f"watched destinations ({', '.join(check.watch_prefixes)}) within {minutes}"
                )
                for number in mine:
                    held.setdefault(number, reason)
    return held


def _remember(mail: NewMail, check: VelocityCheck, batch: _Batch) -> None:
    for order in mail.orders[: check.direct]:
        batch.seen(check.customer_id, prefix_of(order.recipient, check.suffix_digits)).add(
            order.recipient
        )
        prefix = watched(order.recipient, check.watch_prefixes)
        if prefix is not None:
            batch.seen(check.customer_id, prefix).add(order.recipient)


def _alert(
    conn: Connection, mail: NewMail, check: VelocityCheck, held: list[NewOrder], now: datetime
) -> None:
    from bridge.store.inbound import customer_inbound  # inbound imports the intake store

    customer = customer_inbound(conn, check.customer_id)
    to = (customer.admin or customer.postmaster) if customer else ""
    to = to or check.alert_fallback
    log.warning(
        "%s: customer %s: %d order(s) held, %s; release with `mailsms held release --mail %s`%s",
        mail.id,
        check.customer,
        len(held),
        held[0].error.removeprefix(f"{HOLD_REASON}: "),
        mail.id,
        f"; alert to {to}" if to else " (no admin address to alert)",
    )
    if not to:
        return
    context = {
        "customer": check.customer,
        "mail_id": mail.id,
        "sender": mail.envelope_from,
        "reason": held[0].error,
        "held": len(held),
        "numbers": sorted({o.recipient for o in held})[:20],
        "window_minutes": f"{check.window / 60:g}",
        "received_at": now.strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    queue_notice(conn, "velocity_hold", to, context, now)


def hold_pumping(conn: Connection, mails: list[NewMail]) -> list[NewMail]:
    """The mails with their pumping orders marked `held` (and the admins alerted)."""
    batch = _Batch()
    out: list[NewMail] = []
    for mail in mails:
        check = mail.velocity
        if check is None:
            out.append(mail)
            continue
        reasons = _reasons(conn, mail, check, batch)
        _remember(mail, check, batch)
        if not reasons:
            out.append(mail)
            continue
        orders = tuple(
            dataclasses.replace(o, status="held", error=reasons[o.recipient])
            if n < check.direct and o.recipient in reasons
            else o
            for n, o in enumerate(mail.orders)
        )
        held = [o for o in orders if o.status == "held"]
        since = mail.received_at - timedelta(seconds=check.window)
        if check.customer_id not in batch.alerted and not _alerted(conn, check.customer_id, since):
            _alert(conn, mail, check, held, mail.received_at)
        batch.alerted.add(check.customer_id)
        out.append(dataclasses.replace(mail, orders=orders))
    return out


# -- operators: look at held orders, release them or refuse them ---------------------
def held_orders(
    conn: Connection, customer: str | None = None, mail_id: str | None = None
) -> list[dict[str, Any]]:
    """Held orders (for SMS pumping or after an unexpected error), oldest first."""
    query = (
        select(
            _order.c.id,
            _order.c.created_at,
            _order.c.recipient,
            _order.c.error,
            _user.c.address.label("sender"),
            _customer.c.name.label("customer"),
        )
        .select_from(_order.join(_user, _user.c.id == _order.c.user_id).join(_customer))
        .where(_order.c.status == "held")
        .order_by(_order.c.created_at, _order.c.id)
    )
    if customer is not None:
        query = query.where(_customer.c.name == customer)
    if mail_id is not None:
        query = query.where(_order.c.mail_id == mail_id)
    return [dict(r._mapping) for r in conn.execute(query)]


def release_orders(conn: Connection, order_ids: list[str], now: datetime) -> int:
    """Queue held orders for sending; how many were released."""
    return sum(release_held(conn, order_id, now) for order_id in order_ids)


def refuse_orders(conn: Connection, order_ids: list[str], now: datetime) -> int:
    """Fail held orders for good (the sender gets the usual failure notice); how many."""
    refused = 0
    for order_id in order_ids:
        if conn.execute(
            select(_order.c.id).where(_order.c.id == order_id, _order.c.status == "held")
        ).first():
            refused += record_final(conn, order_id, now, "failed", OPERATOR_REFUSED)
    return refused
