"""Store functions for SMS-to-list: join and leave by keyword, and the daily export's data.

A member who leaves keeps a row (`status = left`) so the "changes" export can report it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from bridge.db.core import table
from bridge.keyword_lists.status import MemberStatus
from bridge.keyword_lists.tables import InboundList, ListMember
from bridge.tenants.tables import Customer

_list = table(InboundList)
_member = table(ListMember)
_customer = table(Customer)


def list_id(conn: Connection, customer_id: int, name: str, now: datetime) -> int:
    """The list's id; a list named by a keyword action but not configured is created."""
    found = conn.execute(
        select(_list.c.id).where(_list.c.customer_id == customer_id, _list.c.name == name)
    ).scalar()
    if found is not None:
        return int(found)
    key = conn.execute(
        insert(_list).values(
            customer_id=customer_id,
            name=name,
            export_to=[],
            export_at="06:00",
            export_mode="changes",
            only_if_changed=True,
            last_export_at=now,
        )
    ).inserted_primary_key
    assert key is not None
    return int(key[0])


def set_membership(conn: Connection, lid: int, msisdn: str, join: bool, now: datetime) -> bool:
    """Join or leave; True if something changed."""
    row = conn.execute(
        select(_member.c.id, _member.c.status).where(
            _member.c.list_id == lid, _member.c.msisdn == msisdn
        )
    ).first()
    wanted = MemberStatus.MEMBER if join else MemberStatus.LEFT
    if row is None:
        if not join:
            return False
        conn.execute(
            insert(_member).values(
                list_id=lid,
                msisdn=msisdn,
                status=MemberStatus.MEMBER,
                joined_at=now,
                changed_at=now,
            )
        )
        return True
    if row.status == wanted:
        return False
    values: dict[str, object] = {"status": wanted, "changed_at": now}
    if join:
        values["joined_at"] = now
    conn.execute(update(_member).where(_member.c.id == row.id).values(**values))
    return True


@dataclass(frozen=True, slots=True)
class ListRow:
    id: int
    customer_id: int
    customer: str
    name: str
    export_to: tuple[str, ...]
    export_at: str
    export_mode: str
    only_if_changed: bool
    last_export_at: datetime | None


@dataclass(frozen=True, slots=True)
class MemberRow:
    msisdn: str
    status: MemberStatus
    joined_at: datetime
    changed_at: datetime


def all_lists(conn: Connection) -> list[ListRow]:
    rows = conn.execute(
        select(_list, _customer.c.name.label("customer"))
        .join(_customer, _customer.c.id == _list.c.customer_id)
        .order_by(_list.c.id)
    ).all()
    return [
        ListRow(
            r.id,
            r.customer_id,
            r.customer,
            r.name,
            tuple(r.export_to or ()),
            r.export_at,
            r.export_mode,
            r.only_if_changed,
            r.last_export_at,
        )
        for r in rows
    ]


def members(conn: Connection, lid: int) -> list[MemberRow]:
    rows = conn.execute(
        select(_member).where(_member.c.list_id == lid).order_by(_member.c.msisdn)
    ).all()
    return [MemberRow(r.msisdn, MemberStatus(r.status), r.joined_at, r.changed_at) for r in rows]


def mark_exported(conn: Connection, lid: int, now: datetime) -> None:
    conn.execute(update(_list).where(_list.c.id == lid).values(last_export_at=now))
