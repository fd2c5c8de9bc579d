"""Store functions for outbound reporting: find orders, count them per month, purge old rows.

`query_orders` serves `mailsms report orders`, the REST API's message list and the
portal's outbound report (scoped to a customer, paged by order id); `order_detail` gives
one order with its parts and history (the API's message status, the portal's order
page); `monthly_rows` gives the month's counts
per service (profile), cost centre and user for the monthly archive (`monthly_report`);
`purge` applies the retention: message text first (if a shorter text retention is
set), whole orders with their history later.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    case,
    delete,
    func,
    insert,
    not_,
    select,
    update,
)

from bridge.db.core import count_rows, delete_before, table
from bridge.db.prepared import fetch
from bridge.inbound.tables import Inbound
from bridge.lists.tables import ListMail
from bridge.mt.orders import order_history
from bridge.mt.status import FINAL_ORDER_STATUSES, OrderStatus, ReceiptStatus
from bridge.mt.tables import Mail, Order, OrderEvent, Part, Receipt
from bridge.reports.tables import MonthlyReport
from bridge.tenants.tables import Customer, Profile, User

_order = table(Order)
_event = table(OrderEvent)
_part = table(Part)
_mail = table(Mail)
_receipt = table(Receipt)
_user = table(User)
_customer = table(Customer)
_profile = table(Profile)
_inbound = table(Inbound)
_list_mail = table(ListMail)
_monthly = table(MonthlyReport)
# Reached the network: billed.
SENT = (
    OrderStatus.SUBMITTED,
    OrderStatus.DELIVERED,
    OrderStatus.UNDELIVERABLE,
    OrderStatus.UNCONFIRMED,
)
FAILED = (OrderStatus.UNDELIVERABLE, OrderStatus.EXPIRED, OrderStatus.FAILED)
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """Which orders a report lists; None means "any".

    `customer_id` scopes a customer's own view (an order of another customer is never
    listed); `after` continues a list after that order id, in the list's order (oldest
    first, or newest first with `newest_first`).
    """

    since: datetime | None = None
    until: datetime | None = None
    customer: str | None = None
    customer_id: int | None = None
    profile: str | None = None
    user: str | None = None
    recipient: str | None = None
    status: str | None = None
    cost_centre: str | None = None
    mail_id: str | None = None
    order_id: str | None = None
    limit: int | None = None
    after: str | None = None
    newest_first: bool = False


def _cost_centre() -> Any:
    return func.coalesce(_order.c.policy["cost_centre"].as_string(), "")


def _select() -> Any:
    return select(
        _order.c.id,
        _order.c.mail_id,
        _order.c.created_at,
        _order.c.updated_at,
        _order.c.final_at,
        _order.c.expires_at,
        _order.c.next_attempt_at,
        _order.c.status,
        _order.c.recipient,
        _user.c.address.label("user"),
        _customer.c.id.label("customer_id"),
        _customer.c.name.label("customer"),
        func.coalesce(_profile.c.name, "").label("profile"),
        _cost_centre().label("cost_centre"),
        _order.c.sender_id,
        _order.c.encoding,
        _order.c.priority,
        _order.c.parts,
        _order.c.attempts,
        _order.c.error,
        _order.c.text,
    ).select_from(
        _order.join(_user, _order.c.user_id == _user.c.id)
        .join(_customer, _user.c.customer_id == _customer.c.id)
        .outerjoin(_profile, _user.c.profile_id == _profile.c.id)
    )


# The filters a list may have, by `OrderFilter` field: each a condition on one parameter
# of the field's name.
_FILTERS: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("customer_id", lambda v: _user.c.customer_id == v),
    ("order_id", lambda v: _order.c.id == v),
    ("since", lambda v: _order.c.created_at >= v),
    ("until", lambda v: _order.c.created_at < v),
    ("customer", lambda v: _customer.c.name == v),
    ("profile", lambda v: _profile.c.name == v),
    ("user", lambda v: _user.c.address == v),
    ("recipient", lambda v: _order.c.recipient == v),
    ("status", lambda v: _order.c.status == v),
    ("cost_centre", lambda v: _cost_centre() == v),
    ("mail_id", lambda v: _order.c.mail_id == v),
)
# A page mark's place in the list: its order's creation time, within the scope.
_MARK = (
    select(_order.c.created_at)
    .join(_user, _user.c.id == _order.c.user_id)
    .where(_order.c.id == bindparam("after"))
)
_MARK_OF = _MARK.where(_user.c.customer_id == bindparam("customer_id"))


@functools.lru_cache(maxsize=64)
def _orders_query(given: tuple[str, ...], newest_first: bool, after: bool, limit: bool) -> Any:
    """The list's statement for the filters named in `given`, a page mark (parameters
    `mark`, its time, and `after`, its id) and a `limit`: built once for each such shape,
    so that a list is not built and compiled again for every page."""
    query = _select()
    created, order_id = _order.c.created_at, _order.c.id
    if newest_first:
        query = query.order_by(created.desc(), order_id.desc())
    else:
        query = query.order_by(created, order_id)
    for name, condition in _FILTERS:
        if name in given:
            query = query.where(condition(bindparam(name)))
    if after:
        mark = bindparam("mark", type_=created.type)
        mark_id = bindparam("after", type_=order_id.type)
        if newest_first:
            query = query.where((created < mark) | ((created == mark) & (order_id < mark_id)))
        else:
            query = query.where((created > mark) | ((created == mark) & (order_id > mark_id)))
    if limit:
        query = query.limit(bindparam("limit"))
    return query


def _mark(conn: Connection, f: OrderFilter) -> datetime | None:
    """The creation time of order `f.after`, or None when that order is not in the list's
    scope (a page mark from another customer starts at the top)."""
    if f.customer_id is None:
        rows = fetch(conn, _MARK, {"after": f.after})
    else:
        rows = fetch(conn, _MARK_OF, {"after": f.after, "customer_id": f.customer_id})
    return rows[0].created_at if rows else None


def query_orders(conn: Connection, f: OrderFilter) -> list[dict[str, Any]]:
    """Orders matching every given filter, oldest first (or newest first)."""
    values: dict[str, Any] = {}
    for name, _ in _FILTERS:
        value = getattr(f, name)
        if value is not None:
            values[name] = value.lower() if name == "user" else value
    given = tuple(values)
    after = f.after is not None and (mark := _mark(conn, f)) is not None
    if after:
        values |= {"mark": mark, "after": f.after}
    if f.limit:
        values["limit"] = f.limit
    query = _orders_query(given, f.newest_first, after, bool(f.limit))
    return [r._asdict() for r in fetch(conn, query, values)]


# Built once: the REST API's status read and the portal's order page read one order by id.
_ONE_ORDER = _select().where(_order.c.id == bindparam("order_id"))
_ONE_ORDER_OF = _ONE_ORDER.where(_user.c.customer_id == bindparam("customer_id"))
_PARTS = (
    select(_part.c.seq, _part.c.state, _part.c.error_code, _part.c.submitted_at)
    .where(_part.c.order_id == bindparam("order_id"))
    .order_by(_part.c.seq, _part.c.id)
)


def order_detail(conn: Connection, customer_id: int | None, order_id: str) -> dict[str, Any] | None:
    """One order as `query_orders` lists it, with its parts and history (oldest first);
    None when there is no such order, or it is not of `customer_id` (None: any customer)."""
    if customer_id is None:
        rows = fetch(conn, _ONE_ORDER, {"order_id": order_id})
    else:
        rows = fetch(conn, _ONE_ORDER_OF, {"order_id": order_id, "customer_id": customer_id})
    if not rows:
        return None
    parts = fetch(conn, _PARTS, {"order_id": order_id})
    return {
        **rows[0]._asdict(),
        "part_states": [p._asdict() for p in parts],
        "history": order_history(conn, order_id),
    }


def monthly_rows(
    conn: Connection, customer_id: int, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Counts per (service, cost centre, user) for orders created in [start, end)."""
    sent = case((_order.c.status.in_(SENT), 1), else_=0)
    failed = case((_order.c.status.in_(FAILED), 1), else_=0)
    service = func.coalesce(_profile.c.name, "")
    cost_centre = _cost_centre()
    rows = conn.execute(
        select(
            service.label("service"),
            cost_centre.label("cost_centre"),
            _user.c.address.label("user"),
            func.count().label("orders"),
            func.sum(sent).label("sent"),
            func.sum(sent * _order.c.parts).label("parts"),
            func.sum(failed).label("failed"),
        )
        .select_from(
            _order.join(_user, _order.c.user_id == _user.c.id).outerjoin(
                _profile, _user.c.profile_id == _profile.c.id
            )
        )
        .where(
            _user.c.customer_id == customer_id,
            _order.c.created_at >= start,
            _order.c.created_at < end,
        )
        .group_by(service, cost_centre, _user.c.address)
    ).all()
    out = {
        (r.service, r.cost_centre, r.user): {
            **r._mapping,
            "sent": int(r.sent or 0),
            "parts": int(r.parts or 0),
            "failed": int(r.failed or 0),
            "received": 0,
        }
        for r in rows
    }
    received = conn.execute(
        select(
            service.label("service"),
            cost_centre.label("cost_centre"),
            _user.c.address.label("user"),
            func.count().label("n"),
        )
        .select_from(
            _inbound.join(_order, _inbound.c.order_id == _order.c.id)
            .join(_user, _order.c.user_id == _user.c.id)
            .outerjoin(_profile, _user.c.profile_id == _profile.c.id)
        )
        .where(
            _user.c.customer_id == customer_id,
            _inbound.c.received_at >= start,
            _inbound.c.received_at < end,
        )
        .group_by(service, cost_centre, _user.c.address)
    ).all()
    for r in received:
        key = (r.service, r.cost_centre, r.user)
        row = out.setdefault(
            key,
            {"service": key[0], "cost_centre": key[1], "user": key[2], "orders": 0}
            | {"sent": 0, "parts": 0, "failed": 0, "received": 0},
        )
        row["received"] = int(r.n)
    return [out[k] for k in sorted(out)]


def customers(conn: Connection) -> list[tuple[int, str]]:
    return [(r.id, r.name) for r in conn.execute(select(_customer.c.id, _customer.c.name))]


def customer_id(conn: Connection, name: str) -> int | None:
    cid = conn.execute(select(_customer.c.id).where(_customer.c.name == name)).scalar()
    return None if cid is None else int(cid)


def save_monthly(
    conn: Connection,
    cid: int,
    month: str,
    summary: dict[str, Any],
    csv_text: str,
    now: datetime,
) -> None:
    """Store (or replace) the archived report of `cid` for `month`."""
    conn.execute(delete(_monthly).where(_monthly.c.customer_id == cid, _monthly.c.month == month))
    conn.execute(
        insert(_monthly).values(
            customer_id=cid, month=month, generated_at=now, summary=summary, csv=csv_text
        )
    )


def get_monthly(conn: Connection, cid: int, month: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(_monthly).where(_monthly.c.customer_id == cid, _monthly.c.month == month)
    ).first()
    return None if row is None else dict(row._mapping)


def mark_mailed(conn: Connection, cid: int, month: str, now: datetime) -> None:
    conn.execute(
        update(_monthly)
        .where(_monthly.c.customer_id == cid, _monthly.c.month == month)
        .values(mailed_at=now)
    )


def purge_monthly(conn: Connection, oldest_month: str) -> int:
    """Drop archived reports of months before `oldest_month` ("YYYY-MM" sorts as text)."""
    return int(conn.execute(delete(_monthly).where(_monthly.c.month < oldest_month)).rowcount or 0)


def purge(
    conn: Connection, now: datetime, retention_days: int, text_days: int = 0, dry_run: bool = False
) -> dict[str, int]:
    """Blank old texts, then delete final orders (parts, history, mails) and receipts past
    retention."""
    final = list(FINAL_ORDER_STATUSES)
    counts = {"texts": 0, "orders": 0, "mails": 0, "receipts": 0}
    if text_days and text_days < retention_days:
        text_cut = now - timedelta(days=text_days)
        old_text = (_order.c.created_at < text_cut, _order.c.status.in_(final), _order.c.text != "")
        if dry_run:
            counts["texts"] = count_rows(conn, _order, *old_text)
        else:
            counts["texts"] = int(
                conn.execute(update(_order).where(*old_text).values(text="")).rowcount or 0
            )
            conn.execute(
                update(_mail)
                .where(_mail.c.received_at < text_cut, _mail.c.size > 0)
                .where(
                    not_(
                        _mail.c.id.in_(
                            select(_order.c.mail_id).where(_order.c.status.notin_(final))
                        )
                    )
                )
                .values(raw=b"", subject="", size=0)
            )
    cut = now - timedelta(days=retention_days)
    done = _receipt.c.status != ReceiptStatus.NEW  # applied, or kept as orphan / unmatched
    counts["receipts"] = delete_before(
        conn, _receipt, _receipt.c.received_at, cut, done, dry_run=dry_run
    )
    ids = list(
        conn.execute(
            select(_order.c.id).where(_order.c.created_at < cut, _order.c.status.in_(final))
        ).scalars()
    )
    counts["orders"] = len(ids)
    if dry_run:
        counts["mails"] = count_rows(conn, _mail, _mail.c.received_at < cut)
        return counts
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        conn.execute(delete(_part).where(_part.c.order_id.in_(chunk)))
        conn.execute(delete(_event).where(_event.c.order_id.in_(chunk)))
        conn.execute(delete(_order).where(_order.c.id.in_(chunk)))
    orphans = list(
        conn.execute(
            select(_mail.c.id).where(
                _mail.c.received_at < cut, not_(_mail.c.id.in_(select(_order.c.mail_id)))
            )
        ).scalars()
    )
    for i in range(0, len(orphans), _CHUNK):
        chunk = orphans[i : i + _CHUNK]
        conn.execute(delete(_list_mail).where(_list_mail.c.mail_id.in_(chunk)))
        conn.execute(delete(_mail).where(_mail.c.id.in_(chunk)))
    counts["mails"] = len(orphans)
    return counts
