"""The portal's reads of distribution lists: a customer's lists, one list, a page of members.

Every function takes the customer the page shows (`None`: every customer, operators
only) and filters by it, so a list of another customer reads exactly like a missing one.
Members carry their stop-list flag as the intake reads it (the customer's own entries
and those for every customer; service entries are not counted here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, exists, func, or_, select

from bridge.db.core import table
from bridge.inbound.tables import StopEntry
from bridge.lists.tables import DistributionList, DistributionMember
from bridge.tenants.tables import Customer

_list = table(DistributionList)
_member = table(DistributionMember)
_customer = table(Customer)
_stop = table(StopEntry)


@dataclass(frozen=True, slots=True)
class ListView:
    id: int
    customer_id: int
    customer: str
    name: str
    description: str
    fields: tuple[str, ...]
    members: int


@dataclass(frozen=True, slots=True)
class MemberView:
    msisdn: str
    first_name: str
    last_name: str
    fields: dict[str, Any]
    stopped: bool


@dataclass(frozen=True, slots=True)
class MembersPage:
    rows: tuple[MemberView, ...]
    total: int  # members matching the search


def customer_settings(conn: Connection, customer_id: int) -> dict[str, Any]:
    """The customer's own settings (its level of the cascade; national numbers on its
    pages are read with its `default_country`)."""
    found = conn.execute(select(_customer.c.settings).where(_customer.c.id == customer_id)).scalar()
    return dict(found or {})


def _lists_query(customer_id: int | None) -> Any:
    counts = (
        select(_member.c.list_id, func.count().label("n")).group_by(_member.c.list_id).subquery()
    )
    query = (
        select(_list, _customer.c.name.label("customer"), func.coalesce(counts.c.n, 0).label("n"))
        .join(_customer, _customer.c.id == _list.c.customer_id)
        .outerjoin(counts, counts.c.list_id == _list.c.id)
        .order_by(_customer.c.name, _list.c.name)
    )
    if customer_id is not None:
        query = query.where(_list.c.customer_id == customer_id)
    return query


def _view(r: Any) -> ListView:
    return ListView(
        r.id, r.customer_id, r.customer, r.name, r.description, tuple(r.fields or ()), int(r.n)
    )


def lists_of(conn: Connection, customer_id: int | None) -> list[ListView]:
    """The lists of one customer (or of every customer) with their member counts."""
    return [_view(r) for r in conn.execute(_lists_query(customer_id))]


def list_of(conn: Connection, list_id: int, customer_id: int | None) -> ListView | None:
    """List `list_id` if it belongs to `customer_id` (any customer when None), else None."""
    row = conn.execute(_lists_query(customer_id).where(_list.c.id == list_id)).first()
    return _view(row) if row is not None else None


def members_page(
    conn: Connection, lst: ListView, search: str, offset: int, limit: int
) -> MembersPage:
    """One page of the list's members in the order they were added; `search` matches the
    number or a name (case-insensitive, anywhere in it)."""
    where = [_member.c.list_id == lst.id]
    if search:
        like = f"%{search.lower().replace('%', '').replace('_', '')}%"
        where.append(
            or_(
                _member.c.msisdn.like(like),
                func.lower(_member.c.first_name).like(like),
                func.lower(_member.c.last_name).like(like),
            )
        )
    stopped = exists().where(
        _stop.c.msisdn == _member.c.msisdn,
        or_(_stop.c.customer_id == lst.customer_id, _stop.c.customer_id == 0),
        _stop.c.service == "",
    )
    total = conn.execute(select(func.count()).select_from(_member).where(*where)).scalar()
    rows = conn.execute(
        select(
            _member.c.msisdn,
            _member.c.first_name,
            _member.c.last_name,
            _member.c.fields,
            stopped.label("stopped"),
        )
        .where(*where)
        .order_by(_member.c.id)
        .offset(offset)
        .limit(limit)
    )
    return MembersPage(
        tuple(MemberView(r[0], r[1], r[2], r[3] or {}, bool(r[4])) for r in rows),
        int(total or 0),
    )
