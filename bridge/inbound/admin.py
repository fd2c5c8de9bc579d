"""Store functions for `mailsms inbound apply|list`: write a numbers file declaratively.

`apply_numbers` makes the database match the file for every customer the file names
(numbers and lists not in the file are removed for those customers; other customers are
untouched), in one transaction, and returns what changed; with `dry_run` it changes
nothing (the caller's transaction is rolled back by raising nothing and writing nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.errors import InputError
from bridge.inbound.config import NumbersFile
from bridge.inbound.tables import InboundCustomer, InboundNumber
from bridge.keyword_lists.tables import InboundList, ListMember
from bridge.tenants.tables import Customer

_customer = table(Customer)
_icust = table(InboundCustomer)
_number = table(InboundNumber)
_list = table(InboundList)
_member = table(ListMember)


class NumbersApplyError(InputError, ValueError):
    """The file names something the database does not have (e.g. an unknown customer)."""


@dataclass
class ApplyReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _customer_ids(conn: Connection, names: set[str]) -> dict[str, int]:
    rows = conn.execute(select(_customer.c.id, _customer.c.name).where(_customer.c.name.in_(names)))
    found = {r.name: r.id for r in rows}
    missing = sorted(names - found.keys())
    if missing:
        raise NumbersApplyError(
            f"unknown customer(s) {', '.join(missing)}; create them with `mailsms customer add`"
        )
    return found


def apply_numbers(conn: Connection, spec: NumbersFile, dry_run: bool = False) -> ApplyReport:
    names = {c.name for c in spec.customer} | {n.customer for n in spec.number}
    ids = _customer_ids(conn, names)
    report = ApplyReport()
    now = utcnow()

    def write(stmt: object) -> None:
        if not dry_run:
            conn.execute(stmt)  # type: ignore[call-overload]

    for c in spec.customer:
        cid = ids[c.name]
        cvalues = {
            "postmaster": c.postmaster,
            "admin": c.admin,
            "stop_scope": c.stop_scope,
            "status_push": c.status_push.model_dump() if c.status_push else None,
        }
        old = conn.execute(select(_icust).where(_icust.c.customer_id == cid)).first()
        label = f"customer {c.name}"
        if old is None:
            report.added.append(label)
            write(insert(_icust).values(customer_id=cid, updated_at=now, **cvalues))
        elif any(getattr(old, k) != v for k, v in cvalues.items()):
            report.changed.append(label)
            write(
                update(_icust).where(_icust.c.customer_id == cid).values(updated_at=now, **cvalues)
            )
        for lst in c.list:
            _apply_list(conn, cid, c.name, lst.model_dump(), report, write)
        wanted_lists = {lst.name for lst in c.list}
        for r in conn.execute(select(_list).where(_list.c.customer_id == cid)).all():
            if r.name not in wanted_lists:
                report.removed.append(f"list {c.name}/{r.name}")
                write(delete(_member).where(_member.c.list_id == r.id))
                write(delete(_list).where(_list.c.id == r.id))

    for n in spec.number:
        cid = ids[n.customer]
        values: dict[str, Any] = {
            "sharing": n.sharing,
            "fallback": list(n.fallback),
            "config": n.stored(),
        }
        old = conn.execute(
            select(_number).where(_number.c.number == n.number, _number.c.customer_id == cid)
        ).first()
        label = f"number {n.number} ({n.customer})"
        if old is None:
            report.added.append(label)
            write(
                insert(_number).values(number=n.number, customer_id=cid, updated_at=now, **values)
            )
        elif any(getattr(old, k) != v for k, v in values.items()):
            report.changed.append(label)
            write(update(_number).where(_number.c.id == old.id).values(updated_at=now, **values))
        else:
            report.unchanged.append(label)
    wanted = {(n.number, ids[n.customer]) for n in spec.number}
    for r in conn.execute(select(_number).where(_number.c.customer_id.in_(ids.values()))).all():
        if (r.number, r.customer_id) not in wanted:
            report.removed.append(f"number {r.number}")
            write(delete(_number).where(_number.c.id == r.id))
    return report


def _apply_list(
    conn: Connection,
    cid: int,
    customer: str,
    spec: dict[str, object],
    report: ApplyReport,
    write: object,
) -> None:
    name = str(spec.pop("name"))
    spec["export_to"] = list(spec["export_to"])  # type: ignore[call-overload]
    old = conn.execute(
        select(_list).where(_list.c.customer_id == cid, _list.c.name == name)
    ).first()
    label = f"list {customer}/{name}"
    if old is None:
        report.added.append(label)
        write(insert(_list).values(customer_id=cid, name=name, **spec))  # type: ignore[operator]
    elif any(getattr(old, k) != v for k, v in spec.items()):
        report.changed.append(label)
        write(update(_list).where(_list.c.id == old.id).values(**spec))  # type: ignore[operator]


@dataclass(frozen=True, slots=True)
class NumberListing:
    number: str
    customer: str
    sharing: str
    fallback: tuple[str, ...]
    actions: tuple[str, ...]
    keywords: tuple[str, ...]


def list_numbers(conn: Connection) -> list[NumberListing]:
    rows = conn.execute(
        select(_number, _customer.c.name.label("customer"))
        .join(_customer, _customer.c.id == _number.c.customer_id)
        .order_by(_number.c.number, _customer.c.name)
    ).all()
    out = []
    for r in rows:
        config = r.config or {}
        actions = tuple(str(a.get("type")) for a in config.get("actions", []))
        keywords = tuple(str(k.get("keyword")) for k in config.get("keywords", []))
        out.append(
            NumberListing(
                r.number, r.customer, r.sharing, tuple(r.fallback or ()), actions, keywords
            )
        )
    return out


def customer_id(conn: Connection, name: str) -> int | None:
    value = conn.execute(select(_customer.c.id).where(_customer.c.name == name)).scalar()
    return int(value) if value is not None else None
