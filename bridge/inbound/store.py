"""Store functions for inbound SMS: keep each as received, load what routing needs, assignments.

`insert_inbound` is all that happens before the SMSC gets its deliver_sm_resp.
Reply assignments ("who last texted this number, from which of our numbers") are
recorded when orders are submitted (`record_order_assignments`) and when an SMS2Mail
mail goes to a user (`record_conversation`); `conversation_senders` lets a reply by
mail go out from the same number the conversation used.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    String,
    bindparam,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from bridge.db import prepared
from bridge.db.bulk import bulk_execute, bulk_insert
from bridge.db.core import count_rows, delete_before, table
from bridge.db.queue import Queue, claim
from bridge.inbound.choice import NumberRow, serves
from bridge.inbound.config import parse_actions, parse_keywords
from bridge.inbound.status import InboundStatus
from bridge.inbound.tables import Inbound, InboundCustomer, InboundNumber, ReplyAssignment
from bridge.mt.tables import Mail, Order, Part
from bridge.smpp.address import canonical_number
from bridge.tenants.tables import Customer, User
from bridge.values import InboundSms

_inbound = table(Inbound)
# Received SMS wait for routing; a claim leases them for INBOUND_LEASE seconds.
_QUEUE = Queue(_inbound, _inbound.c.status == InboundStatus.RECEIVED, counts_attempts=False)
# Routing a claimed SMS does not depend on the lease ending after it: `handle` re-reads
# the row in its own transaction (on PostgreSQL locked, SKIP LOCKED), and its actions (a
# notice, an order, a push, an SMPP outbox row: only queued) commit with its new status,
# so an instance whose lease ran out finds it routed, or held by the other, and does
# nothing. The lease only keeps two instances from both starting on it.
INBOUND_LEASE = 30.0
_order = table(Order)
_part = table(Part)
_mail = table(Mail)
_user = table(User)
_customer = table(Customer)
_number = table(InboundNumber)
_assign = table(ReplyAssignment)
_icust = table(InboundCustomer)

DEFAULT_REPLY_WINDOW = 7 * 24 * 3600.0  # `[inbound] reply_window`


# Built once: every inbound SMS runs these (building a statement costs several times
# what the database takes to run it; `bridge.db.prepared` compiles each once).
_INSERT_INBOUND = insert(_inbound).returning(_inbound.c.id)
_WAITING = (_inbound.c.id == bindparam("inbound_id")) & (
    _inbound.c.status == InboundStatus.RECEIVED
)
_LOAD_INBOUND = {
    "sqlite": select(_inbound).where(_WAITING),
    "postgresql": select(_inbound).where(_WAITING).with_for_update(skip_locked=True),
}
_SET_INBOUND = update(_inbound).where(_inbound.c.id == bindparam("inbound_id"))
_MARK_INBOUND = _SET_INBOUND.values(status=bindparam("status"), error=bindparam("error"))
_MARK_INBOUND_ORDER = _MARK_INBOUND.values(order_id=bindparam("order_id"))
_ROUTE_INBOUND = _SET_INBOUND.values(
    customer_id=bindparam("customer_id"), route=bindparam("route"), keyword=bindparam("keyword")
)
_NUMBERS = select(_number).order_by(_number.c.id)
# A sender's SMS to one of our numbers received in the window before this one
# (`[inbound] mo_limit`), each a range of ix_inbound_sender: counted up to `cap` (whether
# the limit is passed needs no more, and a flood is not counted in full for each of its
# SMS), and the newest of them kept as limited, if any (newest first: in a flood, the
# one just before).
_EARLIER = (
    (_inbound.c.source == bindparam("source"))
    & (_inbound.c.destination == bindparam("destination"))
    & (_inbound.c.received_at >= bindparam("since"))
    & (_inbound.c.id < bindparam("inbound_id"))
)
_COUNT_EARLIER = select(func.count()).select_from(
    select(_inbound.c.id).where(_EARLIER).limit(bindparam("cap")).subquery()
)
_LIMITED_EARLIER = (
    select(_inbound.c.id)
    .where(_EARLIER, _inbound.c.status == InboundStatus.LIMITED)
    .order_by(_inbound.c.received_at.desc(), _inbound.c.id.desc())
    .limit(1)
)


def insert_inbound(conn: Connection, sms: InboundSms, now: datetime) -> int:
    values = {
        "transport": sms.transport,
        "source": sms.source,
        "destination": sms.destination,
        "text": sms.text,
        "encoding": sms.encoding,
        "parts": sms.parts,
        "received_at": now,
        "status": InboundStatus.RECEIVED,
        "next_attempt_at": now,
        "error": "",
    }
    return int(prepared.fetch(conn, _INSERT_INBOUND, values)[0].id)


def part_exists(conn: Connection, transport: str, smsc_id: str) -> bool:
    """Whether we submitted a part the SMSC gave this message id (a receipt can match it)."""
    if not smsc_id:
        return False
    found = conn.execute(
        select(_part.c.id)
        .where(_part.c.transport == transport, _part.c.smsc_id == smsc_id)
        .limit(1)
    ).first()
    return found is not None


@dataclass(frozen=True, slots=True)
class InboundRow:
    id: int
    source: str
    destination: str
    text: str
    received_at: datetime


def due_inbound(conn: Connection, now: datetime, limit: int) -> list[int]:
    """Claim due inbound SMS for routing (leased: another instance leaves them alone)."""
    return [r.id for r in claim(conn, _QUEUE, now, limit, INBOUND_LEASE)]


def load_inbound(conn: Connection, inbound_id: int) -> InboundRow | None:
    """The row, if it still waits for routing (another instance may have taken it)."""
    found = prepared.fetch(conn, _LOAD_INBOUND[conn.dialect.name], {"inbound_id": inbound_id})
    if not found:
        return None
    r = found[0]
    return InboundRow(r.id, r.source, r.destination, r.text, r.received_at)


def mark_inbound(
    conn: Connection,
    inbound_id: int,
    status: InboundStatus,
    error: str = "",
    order_id: str | None = None,
) -> None:
    values: dict[str, Any] = {"inbound_id": inbound_id, "status": status, "error": error[-4000:]}
    if order_id is None:
        prepared.execute(conn, _MARK_INBOUND, values)
    else:
        prepared.execute(conn, _MARK_INBOUND_ORDER, {**values, "order_id": order_id})


def count_earlier(conn: Connection, row: InboundRow, since: datetime, cap: int) -> int:
    """The SMS from `row`'s sender to `row`'s number received since `since` before it
    (a smaller id), counted up to `cap`."""
    values = {"source": row.source, "destination": row.destination, "since": since}
    found = prepared.fetch(conn, _COUNT_EARLIER, {**values, "inbound_id": row.id, "cap": cap})
    return int(found[0][0] or 0)


def limited_earlier(conn: Connection, row: InboundRow, since: datetime) -> bool:
    """Whether an SMS from `row`'s sender to `row`'s number received since `since`, before
    it, was kept as limited."""
    values = {"source": row.source, "destination": row.destination, "since": since}
    return bool(prepared.fetch(conn, _LIMITED_EARLIER, {**values, "inbound_id": row.id}))


def record_route(
    conn: Connection, inbound_id: int, customer_id: int | None, route: str, keyword: str
) -> None:
    """Whose the message is (None: nobody's) and how it was routed, in the routing transaction."""
    values = {"inbound_id": inbound_id, "customer_id": customer_id, "route": route}
    prepared.execute(conn, _ROUTE_INBOUND, {**values, "keyword": keyword})


def numbers_for(conn: Connection, destination: str) -> tuple[NumberRow, ...]:
    """Every configured number row that could take a message to `destination`."""
    rows = prepared.fetch(conn, _NUMBERS, {})
    return tuple(
        NumberRow(
            r.id,
            r.number,
            r.customer_id,
            r.sharing,
            tuple(r.fallback or ()),
            parse_actions((r.config or {}).get("actions")),
            parse_keywords((r.config or {}).get("keywords")),
            bool((r.config or {}).get("takes_unmatched", False)),
        )
        for r in rows
        if serves(r.number, r.sharing, destination)
    )


@dataclass(frozen=True, slots=True)
class Assignment:
    """A reply assignment: the user a texter's answer belongs to."""

    customer_id: int
    user_id: int
    address: str
    display_name: str
    sender_id: str
    order_id: str | None
    message_id: str
    subject: str
    text: str
    created_at: datetime


def _assignments_query(by_sender: bool, by_customer: bool) -> Select[Any]:
    query = (
        select(_assign, _user.c.display_name)
        .join(_user, _assign.c.user_id == _user.c.id)
        .where(_assign.c.msisdn == bindparam("msisdn"), _assign.c.created_at >= bindparam("since"))
        .where(_assign.c.origin.in_(bindparam("origins", expanding=True)))
        .order_by(_assign.c.created_at.desc(), _assign.c.id.desc())
        .limit(50)
    )
    if by_sender:
        query = query.where(_assign.c.sender_id == bindparam("sender_id"))
    if by_customer:
        query = query.where(_assign.c.customer_id == bindparam("customer_id"))
    return query


# Built once, one for each way of narrowing (every inbound SMS reads them).
_ASSIGNMENTS = {(s, c): _assignments_query(s, c) for s in (False, True) for c in (False, True)}


def _assignments(
    conn: Connection,
    msisdn: str,
    since: datetime,
    sender_id: str | None,
    customer_id: int | None,
    origins: tuple[str, ...],
) -> list[Assignment]:
    values: dict[str, Any] = {
        "msisdn": canonical_number(msisdn),
        "since": since,
        "origins": list(origins),
    }
    if sender_id is not None:
        values["sender_id"] = canonical_number(sender_id)
    if customer_id is not None:
        values["customer_id"] = customer_id
    query = _ASSIGNMENTS[(sender_id is not None, customer_id is not None)]
    return [
        Assignment(
            r.customer_id,
            r.user_id,
            r.address,
            r.display_name,
            r.sender_id,
            r.order_id,
            r.message_id,
            r.subject,
            r.text,
            r.created_at,
        )
        for r in prepared.fetch(conn, query, values)
    ]


def assignments_for(
    conn: Connection,
    msisdn: str,
    number: str,
    now: datetime,
    customer_id: int | None,
    window: float = DEFAULT_REPLY_WINDOW,
) -> list[Assignment]:
    """Order assignments within `window` for a texter, newest first: to this number, else any."""
    since = now - timedelta(seconds=window)
    exact = _assignments(conn, msisdn, since, number, customer_id, ("order",))
    return exact or _assignments(conn, msisdn, since, None, customer_id, ("order",))


# Built once: these run for every submitted order and every accepted mail, and building
# a statement costs several times more than the database answering it.
#
# A submitted order's reply assignment, read and written by the database in one statement
# (run once per order, in the orders' order: of two orders to one number, the later one
# owns its replies). Orders of system users (an ".invalid" address) own no conversation.
_ASSIGNMENT_OF_ORDER = insert(_assign).from_select(
    [
        "msisdn",
        "sender_id",
        "customer_id",
        "user_id",
        "address",
        "origin",
        "order_id",
        "message_id",
        "subject",
        "text",
        "created_at",
        "expires_at",
    ],
    select(
        _order.c.recipient,
        _order.c.sender_id,
        _user.c.customer_id,
        _order.c.user_id,
        _user.c.address,
        literal("order", String),
        _order.c.id,
        _mail.c.message_id,
        func.substr(_mail.c.subject, 1, 998),
        func.substr(_order.c.text, 1, 480),
        bindparam("created_at", type_=_assign.c.created_at.type),
        bindparam("expires_at", type_=_assign.c.expires_at.type),
    )
    .select_from(_order.join(_mail).join(_user, _order.c.user_id == _user.c.id))
    .where(
        _order.c.id == bindparam("order_id"),
        _user.c.address != "",
        # the address does not end with ".invalid" (LIKE ignores case on SQLite)
        func.substr(_user.c.address, func.length(_user.c.address) - 7) != ".invalid",
    ),
)


# The newest assignment of each (user, number) asked for, at or after the earliest time
# asked: one `ORDER BY … LIMIT 1` per pair on the index (msisdn, user_id, created_at, id),
# so the work is a seek per pair however many assignments a user or a number has (a
# window over every row in the window grew with a user's history: 1.1 ms per commit with
# 5,000 rows of one user, 4.4 ms with 20,000). The pairs come in as one parameter: a JSON
# array on SQLite (`json_each`), two arrays on PostgreSQL (`unnest`).
def _newest_query(pairs: Any, b: Any) -> Select[Any]:
    """Pair by pair: the newest assignment of `pairs`' (user, number) in `b`."""
    return (
        select(b.c.id)
        .where(
            b.c.msisdn == pairs.c.msisdn,
            b.c.user_id == pairs.c.user_id,
            b.c.created_at >= bindparam("since"),
        )
        .order_by(b.c.created_at.desc(), b.c.id.desc())
        .limit(1)
    )


def _newest_of_sqlite(pairs: Any) -> Select[Any]:
    """SQLite: the ids of the newest assignments (a scalar subquery per pair), then the
    rows by their ids (SQLite joins in nested loops: a seek per pair, then one per id)."""
    newest = _newest_query(pairs, _assign.alias("b")).scalar_subquery()
    return select(
        _assign.c.user_id, _assign.c.msisdn, _assign.c.sender_id, _assign.c.created_at
    ).where(_assign.c.id.in_(select(newest).select_from(pairs)))


def _newest_of_postgres(pairs: Any) -> Select[Any]:
    """PostgreSQL: each pair joined LATERAL to its newest assignment. Written as for
    SQLite (`id IN (SELECT (newest per pair) …)`), the planner could join the ids to the
    whole table by hashing it, a read of every assignment of the seven days at a commit
    of the intake: it did with 20 pairs among 4,000 rows (1.8 ms against 0.1) and with
    200 among 20,000 (7.4 ms against 1.4). A LATERAL subquery with LIMIT is run once per
    pair on the index, whatever the planner estimates
    (tests/integration/test_hot_read_plans.py)."""
    b = _assign.alias("b")
    newest = (
        _newest_query(pairs, b)
        .with_only_columns(b.c.user_id, b.c.msisdn, b.c.sender_id, b.c.created_at)
        .lateral("newest")
    )
    return select(
        newest.c.user_id, newest.c.msisdn, newest.c.sender_id, newest.c.created_at
    ).select_from(pairs.join(newest, true()))


_EACH = func.json_each(bindparam("pairs", type_=String)).table_valued("value").alias("p")
_PG_PAIRS = (
    func.unnest(bindparam("users", type_=ARRAY(Integer)), bindparam("numbers", type_=ARRAY(String)))
    .table_valued("user_id", "msisdn")
    .render_derived()
    .alias("pairs")
)
_NEWEST_CONVERSATIONS: dict[str, Select[Any]] = {
    "sqlite": _newest_of_sqlite(
        select(
            func.json_extract(_EACH.c.value, "$[0]").label("user_id"),
            func.json_extract(_EACH.c.value, "$[1]").label("msisdn"),
        ).subquery("pairs")
    ),
    "postgresql": _newest_of_postgres(_PG_PAIRS),
}


def newest_conversations_values(
    dialect: str, pairs: Sequence[tuple[int, str]], since: datetime
) -> dict[str, Any]:
    """The parameters of `_NEWEST_CONVERSATIONS[dialect]` for these (user id, number) pairs."""
    if dialect == "postgresql":
        return {"users": [u for u, _ in pairs], "numbers": [n for _, n in pairs], "since": since}
    return {"pairs": json.dumps(pairs), "since": since}


def record_order_assignments(conn: Connection, order_ids: Sequence[str], now: datetime) -> None:
    """Submitted orders: each one's user now owns replies from its recipient (for a window);
    one statement, run for each order in the given order (the last one to a number owns
    its replies)."""
    if not order_ids:
        return
    expires = now + timedelta(seconds=DEFAULT_REPLY_WINDOW)
    bulk_execute(
        conn,
        _ASSIGNMENT_OF_ORDER,
        [{"order_id": i, "created_at": now, "expires_at": expires} for i in order_ids],
    )


_USER_BY_ADDRESS = select(_user.c.id, _user.c.customer_id).where(
    _user.c.address == bindparam("address")
)


def record_conversation(
    conn: Connection,
    address: str,
    msisdn: str,
    sender_id: str,
    now: datetime,
) -> None:
    """An SMS2Mail mail went to `address`: a user's reply to it goes out from `sender_id`."""
    found = prepared.fetch(conn, _USER_BY_ADDRESS, {"address": address.lower()})
    if not found:
        return
    user = found[0]
    row = {
        "msisdn": canonical_number(msisdn),
        "sender_id": canonical_number(sender_id),
        "customer_id": user.customer_id,
        "user_id": user.id,
        "address": address.lower(),
        "origin": "sms2mail",
        "order_id": None,
        "message_id": "",
        "subject": "",
        "text": "",
        "created_at": now,
        "expires_at": now + timedelta(seconds=DEFAULT_REPLY_WINDOW),
    }
    bulk_insert(conn, _assign, [row])


def conversation_senders(
    conn: Connection, wanted: Sequence[tuple[int, str, datetime]]
) -> list[str | None]:
    """For each `(user_id, msisdn, since)`: the sender id of the user's newest conversation
    with `msisdn` begun at or after `since`, or None — one query for all of them.

    The intake's commit asks for every order of a group commit at once (`bridge.intake.
    commit`): a reply to an SMS2Mail mail, or any mail to someone the user is texting with,
    keeps the conversation's sender number. The query takes the newest assignment of each
    (user, number) since the earliest `since`, one index seek per pair; an order whose own
    `since` is later than that newest one has no conversation in its window (nothing newer
    exists).
    """
    if not wanted:
        return []
    asks = [(user_id, canonical_number(msisdn), _aware(since)) for user_id, msisdn, since in wanted]
    newest: dict[tuple[int, str], tuple[datetime, str]] = {}
    dialect = conn.dialect.name
    pairs = sorted({(a[0], a[1]) for a in asks})
    since = min(a[2] for a in asks)
    rows = prepared.fetch(
        conn, _NEWEST_CONVERSATIONS[dialect], newest_conversations_values(dialect, pairs, since)
    )
    for r in rows:
        newest[(r.user_id, r.msisdn)] = (_aware(r.created_at), str(r.sender_id or ""))
    out: list[str | None] = []
    for user_id, msisdn, since in asks:
        found = newest.get((user_id, msisdn))
        out.append((found[1] or None) if found is not None and found[0] >= since else None)
    return out


def _aware(at: datetime) -> datetime:
    """A time as the database gives it back (SQLite: naive, meaning UTC) made comparable."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CustomerInbound:
    id: int
    name: str
    postmaster: str
    admin: str
    stop_scope: str
    timezone: str = ""  # the customer's own setting ("": the bridge's default)


_CUSTOMER_INBOUND = (
    select(
        _customer.c.id,
        _customer.c.name,
        _customer.c.settings,
        _icust.c.postmaster,
        _icust.c.admin,
        _icust.c.stop_scope,
    )
    .select_from(_customer.outerjoin(_icust, _icust.c.customer_id == _customer.c.id))
    .where(_customer.c.id == bindparam("customer_id"))
)


def customer_inbound(conn: Connection, customer_id: int | None) -> CustomerInbound | None:
    if customer_id is None:
        return None
    found = prepared.fetch(conn, _CUSTOMER_INBOUND, {"customer_id": customer_id})
    if not found:
        return None
    r = found[0]
    return CustomerInbound(
        r.id,
        r.name,
        r.postmaster or "",
        r.admin or "",
        r.stop_scope or "global",
        str((r.settings or {}).get("timezone") or ""),
    )


def alert_contact(conn: Connection, customer_id: int | None) -> tuple[str, str] | None:
    """The customer's name and the address its alerts go to (admin, else postmaster)."""
    customer = customer_inbound(conn, customer_id)
    if customer is None:
        return None
    return customer.name, customer.admin or customer.postmaster


def purge_inbound(
    conn: Connection, cut: datetime, text_cut: datetime, *, dry_run: bool
) -> dict[str, int]:
    """Retention of the inbound side: SMS routed before `cut` (kept while the monthly reports
    count them) deleted, and the texts of those routed before `text_cut` blanked; reply
    assignments (they hold the text too) that ran out before `text_cut`."""
    routed = _inbound.c.status != InboundStatus.RECEIVED
    received = _inbound.c.received_at
    counts = {
        "inbound": delete_before(conn, _inbound, received, cut, routed, dry_run=dry_run),
        "assignments": delete_before(
            conn, _assign, _assign.c.expires_at, text_cut, dry_run=dry_run
        ),
        "inbound_texts": 0,
    }
    if text_cut > cut:
        kept = received >= cut  # the older ones are deleted above (or, dry, would be)
        old_text = (received < text_cut, kept, routed, _inbound.c.text != "")
        if dry_run:
            counts["inbound_texts"] = count_rows(conn, _inbound, *old_text)
        else:
            blanked = conn.execute(update(_inbound).where(*old_text).values(text=""))
            counts["inbound_texts"] = int(blanked.rowcount or 0)
    return counts
