"""The portal's reads of inbound numbers: a customer's numbers with their parsed actions and
keywords, its inbound settings and its keyword lists.

Read-only, and always filtered by the customer the page shows (`None`: every customer,
operators only). On a shared number each customer has its own row, so a customer sees
its keywords and actions, never another customer's.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from bridge.db.core import table
from bridge.inbound.config import Action, KeywordConfig, parse_actions, parse_keywords
from bridge.inbound.store import CustomerInbound, customer_inbound
from bridge.inbound.tables import InboundNumber
from bridge.keyword_lists.status import MemberStatus
from bridge.keyword_lists.tables import InboundList, ListMember
from bridge.tenants.tables import Customer

_number = table(InboundNumber)
_customer = table(Customer)
_klist = table(InboundList)
_kmember = table(ListMember)


@dataclass(frozen=True, slots=True)
class NumberView:
    number: str
    customer_id: int
    customer: str
    sharing: str
    fallback: tuple[str, ...]
    takes_unmatched: bool
    actions: tuple[Action, ...]
    keywords: tuple[KeywordConfig, ...]


@dataclass(frozen=True, slots=True)
class KeywordListView:
    customer: str
    name: str
    members: int
    export_to: tuple[str, ...]
    export_at: str
    export_mode: str


def numbers_of(conn: Connection, customer_id: int | None) -> list[NumberView]:
    """The inbound numbers of one customer (or every customer), by number."""
    query = (
        select(_number, _customer.c.name.label("customer"))
        .join(_customer, _customer.c.id == _number.c.customer_id)
        .order_by(_number.c.number, _customer.c.name)
    )
    if customer_id is not None:
        query = query.where(_number.c.customer_id == customer_id)
    out = []
    for r in conn.execute(query):
        config = r.config or {}
        out.append(
            NumberView(
                r.number,
                r.customer_id,
                r.customer,
                r.sharing,
                tuple(r.fallback or ()),
                bool(config.get("takes_unmatched")),
                parse_actions(config.get("actions")),
                parse_keywords(config.get("keywords")),
            )
        )
    return out


def inbound_settings(conn: Connection, customer_id: int | None) -> CustomerInbound | None:
    """The customer's inbound settings (postmaster, admin, stop scope); None for all."""
    return customer_inbound(conn, customer_id)


def keyword_lists_of(conn: Connection, customer_id: int | None) -> list[KeywordListView]:
    """The keyword lists (joined by SMS) of one customer (or every customer)."""
    joined = (
        select(_kmember.c.list_id, func.count().label("n"))
        .where(_kmember.c.status == MemberStatus.MEMBER)
        .group_by(_kmember.c.list_id)
        .subquery()
    )
    query = (
        select(_klist, _customer.c.name.label("customer"), func.coalesce(joined.c.n, 0))
        .join(_customer, _customer.c.id == _klist.c.customer_id)
        .outerjoin(joined, joined.c.list_id == _klist.c.id)
        .order_by(_customer.c.name, _klist.c.name)
    )
    if customer_id is not None:
        query = query.where(_klist.c.customer_id == customer_id)
    return [
        KeywordListView(
            r.customer,
            r.name,
            int(r[-1]),
            tuple(r.export_to or ()),
            r.export_at,
            r.export_mode,
        )
        for r in conn.execute(query)
    ]
