"""Store functions for distribution lists: lists and members, fan-out lookups, the list report.

Members are written in batches with Core `executemany` (a 100,000-member import is
a few statements); the intake reads a list's members together with their stop-list
flag in one query. `queue_list_report` queues the one cumulative report of a list
mail once its last order is final.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, column, delete, exists, func, insert, or_, select
from sqlalchemy import table as table_clause
from sqlalchemy import update as sql_update

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.errors import InputError
from bridge.lists.tables import DistributionList, DistributionMember, ListMail
from bridge.mt.status import FINAL_ORDER_STATUSES
from bridge.mt.tables import Mail, Order
from bridge.notices.queue import queue_notice
from bridge.notices.shown_time import shown_time
from bridge.smpp.address import canonical_number
from bridge.tenants.tables import Customer, User

_list = table(DistributionList)
_member = table(DistributionMember)
_list_mail = table(ListMail)
_customer = table(Customer)
_order = table(Order)
_mail = table(Mail)
_user = table(User)
# The inbound services' stop list (migration 0004); customer_id 0 means every customer.
_stop = table_clause("stop_entry", column("customer_id"), column("msisdn"), column("service"))
BATCH = 5000
REPORT_ROWS = 1000  # per-recipient rows in the report mail; the CSV report has them all


class ListError(InputError, ValueError):
    """A list request that cannot be carried out; the message says why."""


@dataclass(frozen=True, slots=True)
class ListInfo:
    id: int
    customer_id: int
    name: str
    description: str
    fields: tuple[str, ...]
    members: int


@dataclass(frozen=True, slots=True)
class Member:
    msisdn: str
    first_name: str = ""
    last_name: str = ""
    fields: dict[str, Any] | None = None
    stopped: bool = False

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


def _customer_id(conn: Connection, customer: str) -> int:
    cid = conn.execute(select(_customer.c.id).where(_customer.c.name == customer)).scalar()
    if cid is None:
        raise ListError(f"no customer {customer!r}; see `mailsms customer list`")
    return int(cid)


def create_list(
    conn: Connection, customer: str, name: str, fields: Sequence[str] = (), description: str = ""
) -> int:
    cid = _customer_id(conn, customer)
    name = name.lower()
    if find_list(conn, cid, name) is not None:
        raise ListError(f"list {name!r} of {customer} exists already")
    result = conn.execute(
        insert(_list).values(
            customer_id=cid,
            name=name,
            description=description,
            fields=list(fields),
            created_at=utcnow(),
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def update_list(conn: Connection, list_id: int, fields: Sequence[str], description: str) -> None:
    conn.execute(
        sql_update(_list)
        .where(_list.c.id == list_id)
        .values(fields=list(fields), description=description)
    )


def find_list(conn: Connection, customer_id: int, name: str) -> ListInfo | None:
    """The list `name` of the customer with its member count, or None."""
    row = conn.execute(
        select(_list).where(_list.c.customer_id == customer_id, _list.c.name == name.lower())
    ).first()
    if row is None:
        return None
    count = conn.execute(
        select(func.count()).select_from(_member).where(_member.c.list_id == row.id)
    ).scalar()
    return ListInfo(
        row.id, row.customer_id, row.name, row.description, tuple(row.fields or ()), int(count or 0)
    )


def get_list(conn: Connection, customer: str, name: str) -> ListInfo:
    info = find_list(conn, _customer_id(conn, customer), name)
    if info is None:
        raise ListError(f"no list {name!r} for {customer}; create it with `mailsms list add`")
    return info


def list_lists(conn: Connection, customer: str) -> list[ListInfo]:
    cid = _customer_id(conn, customer)
    names = conn.execute(
        select(_list.c.name).where(_list.c.customer_id == cid).order_by(_list.c.name)
    ).scalars()
    return [info for n in list(names) if (info := find_list(conn, cid, n)) is not None]


def put_members(
    conn: Connection, list_id: int, members: Iterable[Member], *, replace: bool = False
) -> tuple[int, int, int]:
    """Add or update members (by number); with `replace`, remove the others. (+, ~, -) counts."""
    existing = {
        r.msisdn: (r.id, r.first_name, r.last_name, r.fields or {})
        for r in conn.execute(
            select(
                _member.c.id,
                _member.c.msisdn,
                _member.c.first_name,
                _member.c.last_name,
                _member.c.fields,
            ).where(_member.c.list_id == list_id)
        )
    }
    now = utcnow()
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    seen: set[str] = set()
    for m in members:
        if m.msisdn in seen:
            continue
        seen.add(m.msisdn)
        values = (m.first_name, m.last_name, m.fields or {})
        old = existing.get(m.msisdn)
        if old is None:
            new.append(
                {
                    "list_id": list_id,
                    "msisdn": m.msisdn,
                    "first_name": values[0],
                    "last_name": values[1],
                    "fields": values[2],
                    "created_at": now,
                }
            )
        elif old[1:] != values:
            changed.append({"mid": old[0], "f": values[0], "l": values[1], "x": values[2]})
    for i in range(0, len(new), BATCH):
        conn.execute(insert(_member), new[i : i + BATCH])
    if changed:
        from sqlalchemy import bindparam

        conn.execute(
            sql_update(_member)
            .where(_member.c.id == bindparam("mid"))
            .values(first_name=bindparam("f"), last_name=bindparam("l"), fields=bindparam("x")),
            changed,
        )
    gone = [existing[n][0] for n in existing if n not in seen] if replace else []
    for i in range(0, len(gone), BATCH):
        conn.execute(delete(_member).where(_member.c.id.in_(gone[i : i + BATCH])))
    return len(new), len(changed), len(gone)


def remove_members(conn: Connection, list_id: int, msisdns: Sequence[str]) -> int:
    result = conn.execute(
        delete(_member).where(_member.c.list_id == list_id, _member.c.msisdn.in_(list(msisdns)))
    )
    return int(result.rowcount or 0)


def list_members(
    conn: Connection, list_id: int, customer_id: int = 0, services: tuple[str, ...] = ()
) -> list[Member]:
    """Every member with its stop-list flag (the customer's or every customer's stop list,
    globally or for one of `services`, as `inbound_actions.is_stopped` reads it)."""
    stopped = exists().where(
        _stop.c.msisdn == _member.c.msisdn,
        or_(_stop.c.customer_id == customer_id, _stop.c.customer_id == 0),
        _stop.c.service.in_(("", *(canonical_number(s) for s in services))),
    )
    rows = conn.execute(
        select(
            _member.c.msisdn,
            _member.c.first_name,
            _member.c.last_name,
            _member.c.fields,
            stopped.label("stopped"),
        )
        .where(_member.c.list_id == list_id)
        .order_by(_member.c.id)
    )
    return [Member(r[0], r[1], r[2], r[3] or {}, bool(r[4])) for r in rows]


def insert_list_mails(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Record list mails (called from the intake's insert, in the same transaction)."""
    if rows:
        conn.execute(insert(_list_mail), list(rows))


def queue_list_report(conn: Connection, mail_id: str, now: datetime) -> bool:
    """Queue the cumulative report of a list mail if all its orders are final (once)."""
    query = select(_list_mail).where(_list_mail.c.mail_id == mail_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()  # orders finishing together: the last one reports
    lm = conn.execute(query).first()
    if lm is None or lm.reported_at is not None:
        return False
    unfinished = conn.execute(  # one is enough to wait
        select(_order.c.id)
        .where(_order.c.mail_id == mail_id, _order.c.status.notin_(list(FINAL_ORDER_STATUSES)))
        .limit(1)
    ).first()
    if unfinished is not None:
        return False
    conn.execute(
        sql_update(_list_mail)
        .where(and_(_list_mail.c.mail_id == mail_id, _list_mail.c.reported_at.is_(None)))
        .values(reported_at=now)
    )
    context, recipient = _report_context(conn, mail_id, lm.lists, lm.skipped or [])
    if context["notify"] != "none":
        queue_notice(conn, "list_report", recipient, context, now, customer=context["customer"])
    return True


def _report_context(
    conn: Connection, mail_id: str, lists: list[str], skipped: list[dict[str, str]]
) -> tuple[dict[str, Any], str]:
    mail = conn.execute(
        select(
            _mail.c.envelope_from, _mail.c.subject, _mail.c.message_id, _mail.c.received_at
        ).where(_mail.c.id == mail_id)
    ).one()
    rows = conn.execute(
        select(
            _order.c.recipient,
            _order.c.status,
            _order.c.error,
            _order.c.parts,
            _order.c.policy,
            _user.c.display_name,
            _customer.c.name.label("customer"),
        )
        .select_from(
            _order.join(_user, _order.c.user_id == _user.c.id).join(
                _customer, _customer.c.id == _user.c.customer_id
            )
        )
        .where(_order.c.mail_id == mail_id)
        .order_by(_order.c.created_at, _order.c.id)
    ).all()
    policy = rows[0].policy if rows else {}
    table_rows = [
        {"msisdn": r.recipient, "status": r.status, "detail": r.error[:200], "parts": r.parts}
        for r in rows
    ] + [
        {"msisdn": s["msisdn"], "status": "skipped", "detail": s["reason"], "parts": 0}
        for s in skipped
    ]
    counts: dict[str, int] = {}
    for row in table_rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    context: dict[str, Any] = {
        "customer": rows[0].customer if rows else "",
        "mail_id": mail_id,
        "lists": lists,
        "subject": mail.subject,
        "in_reply_to": mail.message_id,
        "received_at": shown_time(mail.received_at, (policy or {}).get("timezone")),
        "to_name": rows[0].display_name if rows else "",
        "total": len(table_rows),
        "counts": dict(sorted(counts.items())),
        "rows": table_rows[:REPORT_ROWS],
        "more": max(0, len(table_rows) - REPORT_ROWS),
        "notify": (policy or {}).get("notify", "failures"),
    }
    recipient = (policy or {}).get("notify_address") or mail.envelope_from
    return context, str(recipient)
