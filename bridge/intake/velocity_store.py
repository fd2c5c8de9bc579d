"""SMS pumping across mails, decided in the commit: hold the orders, alert the customer's admin.

`hold_pumping(conn, mails)` runs inside the intake's commit transaction, before the
mails are written. For each mail that carries a `VelocityCheck` it counts the distinct
numbers the customer sent to within the window — per prefix of the mail's numbers,
and over the watched prefixes — in `velocity_number` (one row per customer and number
with the time it was last sent to, so the mails of every instance count) and among the
commit's earlier mails (`Pending`); the commit's numbers are upserted in one statement
at the end, in key order (two instances' commits take the rows' locks in the same
order). Only numbers a limit can count are kept: with `velocity_numbers = 0`, those
under a watched prefix. A mail that passes a limit gets its
orders under that prefix (or to watched destinations) written as `held`, with the
reason in `error`; they are not sent until an operator releases them
(`mailsms held release`). The first hold of a customer within a window queues one
`velocity_hold` notice to its admin (else its postmaster, else the bridge's
postmaster) and logs a warning. Operators list, release or refuse held orders with
`held_orders`, `release_orders` and `refuse_orders`; `purge_numbers` forgets numbers
not sent to for a day (the daily purge).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, case, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bridge.db.bulk import bulk_execute
from bridge.db.core import table
from bridge.db.prepared import fetch
from bridge.intake.tables import VelocityAlert, VelocityNumber
from bridge.intake.velocity import HOLD_REASON, VelocityCheck, prefix_of, upper_bound, watched
from bridge.mt.causes import Cause, FailureCause
from bridge.mt.mails import NewMail, NewOrder
from bridge.mt.orders import record_final, release_held
from bridge.mt.status import OrderStatus
from bridge.mt.steps import Steps
from bridge.mt.tables import Order
from bridge.notices.queue import queue_notice
from bridge.notices.shown_time import shown_time
from bridge.tenants.tables import Customer, User

log = logging.getLogger("bridge.intake")
_order = table(Order)
_user = table(User)
_customer = table(Customer)
_number = table(VelocityNumber)
_alerts = table(VelocityAlert)
OPERATOR = "the operator"
REFUSED = Cause(FailureCause.REFUSED)  # the cause of a refused order (its DSN says 5.7.1)


# Statements built once: the check runs in the intake's commit, for every mail. The
# database counts the numbers, up to what decides the check, and which of them the check
# knows already (this mail's, the commit's earlier mails').
_UNDER = (
    select(_number.c.number)
    .where(
        _number.c.customer_id == bindparam("customer_id"),
        _number.c.number >= bindparam("low"),
        _number.c.number < bindparam("high"),
        _number.c.last_at >= bindparam("since"),
    )
    .limit(bindparam("limit"))
    .subquery()
)
_COUNT = select(
    func.count(), func.count(case((_UNDER.c.number.in_(bindparam("known", expanding=True)), 1)))
).select_from(_UNDER)
_UPSERT = {
    name: dialect_insert(_number).on_conflict_do_update(
        index_elements=["customer_id", "number"],
        set_={"last_at": dialect_insert(_number).excluded.last_at},
    )
    for name, dialect_insert in (("sqlite", sqlite_insert), ("postgresql", pg_insert))
}
_ALERTED = select(_alerts.c.alerted_at).where(_alerts.c.customer_id == bindparam("customer_id"))


class Pending:
    """The numbers a commit's mails sent to, written together after its last mail was
    checked; until then the later mails of the commit count them from here."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[int, dict[str, datetime]] = {}  # customer -> number -> last time

    def add(self, customer_id: int, numbers: set[str], at: datetime) -> None:
        last = self._last.setdefault(customer_id, {})
        for number in numbers:
            before = last.get(number)
            last[number] = at if before is None else max(before, at)

    def under(self, customer_id: int, prefix: str, since: datetime) -> set[str]:
        """The numbers starting with `prefix` the customer sent to since `since`."""
        last = self._last.get(customer_id, {})
        return {n for n, at in last.items() if n.startswith(prefix) and at >= since}

    def write(self, conn: Connection) -> None:
        """Upsert them (one statement for the commit, its rows in key order)."""
        rows = [
            {"customer_id": customer, "number": number, "last_at": at}
            for customer, numbers in sorted(self._last.items())
            for number, at in sorted(numbers.items())
        ]
        bulk_execute(conn, _UPSERT[conn.dialect.name], rows)  # compiled once
        self._last.clear()


def _count(
    conn: Connection, customer_id: int, prefix: str, since: datetime, known: set[str], limit: int
) -> int:
    """How many numbers starting with `prefix`, other than `known`, the customer sent to
    since `since`: exact below `limit`, else at least `limit`."""
    values = {
        "customer_id": customer_id,
        "low": prefix,
        "high": upper_bound(prefix),
        "since": since,
        "known": sorted(known),
        "limit": limit + len(known),
    }
    rows, of_known = fetch(conn, _COUNT, values)[0]
    return int(rows) - int(of_known)


def purge_numbers(conn: Connection, now: datetime) -> int:
    """Forget the numbers no customer sent to for a day (longer than any window)."""
    cut = now - timedelta(days=1)
    conn.execute(delete(_alerts).where(_alerts.c.alerted_at < cut))
    return int(conn.execute(delete(_number).where(_number.c.last_at < cut)).rowcount or 0)


def _alert_due(conn: Connection, customer_id: int, now: datetime, window: float) -> bool:
    """True (and the alert recorded) unless the customer was alerted within the window."""
    last = conn.execute(_ALERTED, {"customer_id": customer_id}).scalar()
    if last is not None and last > now - timedelta(seconds=window):
        return False
    if last is None:
        conn.execute(insert(_alerts).values(customer_id=customer_id, alerted_at=now))
    else:
        conn.execute(
            update(_alerts).where(_alerts.c.customer_id == customer_id).values(alerted_at=now)
        )
    return True


def _over(
    conn: Connection, check: VelocityCheck, prefixes: tuple[str, ...], limit: int, mine: set[str],
    since: datetime, pending: Pending,
) -> int:  # fmt: skip
    """Distinct numbers under `prefixes` (sent to before, by the commit's earlier mails,
    and this mail's), counted up to limit + 1."""
    outermost = _outermost(prefixes)
    known = set(mine)
    for prefix in outermost:
        known |= pending.under(check.customer_id, prefix, since)
    total = len(known)
    for prefix in outermost:
        if total > limit:
            break
        total += _count(conn, check.customer_id, prefix, since, known, limit + 1 - total)
    return total


def _outermost(prefixes: tuple[str, ...]) -> list[str]:
    """`prefixes` without those inside another one ("+2347" in "+234"), so that no
    number is counted twice."""
    kept: list[str] = []
    for prefix in sorted(set(prefixes), key=len):
        if not prefix.startswith(tuple(kept)):
            kept.append(prefix)
    return kept


def _counted(check: VelocityCheck, numbers: set[str]) -> set[str]:
    """The numbers a limit of `check` can count later (all of them, or only the watched
    ones when there is no per-prefix limit)."""
    if check.numbers:
        return numbers
    return {n for n in numbers if watched(n, check.watch_prefixes)}


def _reasons(
    conn: Connection, mail: NewMail, check: VelocityCheck, pending: Pending
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
            count = _over(conn, check, (prefix,), check.numbers, mine, since, pending)
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
                conn, check, check.watch_prefixes, check.watch_numbers, mine, since, pending
            )
            if count > check.watch_numbers:
                reason = (
                    f"{HOLD_REASON}: more than {check.watch_numbers} distinct numbers in "
                    f"watched destinations ({', '.join(check.watch_prefixes)}) within {minutes}"
                )
                for number in mine:
                    held.setdefault(number, reason)
    return held


def _alert(
    conn: Connection, mail: NewMail, check: VelocityCheck, held: list[NewOrder], now: datetime
) -> None:
    from bridge.inbound.store import customer_inbound  # inbound imports the intake store

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
        "received_at": shown_time(now, customer.timezone if customer else "UTC"),
    }
    queue_notice(conn, "velocity_hold", to, context, now, customer=check.customer)


def hold_pumping(
    conn: Connection, mails: Sequence[tuple[NewMail, VelocityCheck | None]]
) -> list[tuple[NewOrder, ...]]:
    """Each mail's orders with its pumping orders marked `held` (and the admins alerted),
    the mails checked in order; the numbers they sent to recorded."""
    pending = Pending()
    out = [
        _hold_one(conn, mail, check, pending) if check is not None else mail.orders
        for mail, check in mails
    ]
    pending.write(conn)
    return out


def _hold_one(
    conn: Connection, mail: NewMail, check: VelocityCheck, pending: Pending
) -> tuple[NewOrder, ...]:
    reasons = _reasons(conn, mail, check, pending)
    numbers = {o.recipient for o in mail.orders[: check.direct]}
    pending.add(check.customer_id, _counted(check, numbers), mail.received_at)
    if not reasons:
        return mail.orders
    orders = tuple(
        dataclasses.replace(o, status=OrderStatus.HELD, error=reasons[o.recipient])
        if n < check.direct and o.recipient in reasons
        else o
        for n, o in enumerate(mail.orders)
    )
    held = [o for o in orders if o.status == OrderStatus.HELD]
    if _alert_due(conn, check.customer_id, mail.received_at, check.window):
        _alert(conn, mail, check, held, mail.received_at)
    return orders


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
        .where(_order.c.status == OrderStatus.HELD)
        .order_by(_order.c.created_at, _order.c.id)
    )
    if customer is not None:
        query = query.where(_customer.c.name == customer)
    if mail_id is not None:
        query = query.where(_order.c.mail_id == mail_id)
    return [dict(r._mapping) for r in conn.execute(query)]


def release_orders(
    conn: Connection, order_ids: list[str], now: datetime, by: str = "operator"
) -> int:
    """Queue held orders for sending; how many were released (`by` whom, for the history)."""
    return sum(release_held(conn, order_id, now, by) for order_id in order_ids)


def refuse_orders(
    conn: Connection, order_ids: list[str], now: datetime, *, steps: Steps, by: str = OPERATOR
) -> int:
    """Fail held orders for good (the sender gets the usual failure notice, which names
    `by`: who refused); how many."""
    reason = f"refused by {by} (SMS pumping suspected); not sent"
    refused = 0
    for order_id in order_ids:
        if conn.execute(
            select(_order.c.id).where(_order.c.id == order_id, _order.c.status == OrderStatus.HELD)
        ).first():
            refused += record_final(
                conn, order_id, now, OrderStatus.FAILED, reason, steps=steps, cause=REFUSED
            )
    return refused
