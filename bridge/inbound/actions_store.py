"""Store functions the inbound actions write through: stop list, answer gate, system SMS.

System SMS (STOP/START confirmations, auto-replies) are ordinary orders so dispatch,
retries and receipts treat them like any other. An order needs a mail row and a user:
each customer gets one disabled system user `system+<customer id>@mailsms.invalid`
(it cannot send mail: the intake refuses disabled senders), and every system SMS gets
a synthetic mail row (id `S…`, empty envelope sender, the reason as `subject`). Their
policy has `notify = "none"`, so no status mail is generated for them. The actions ask
`answer_allowed` first (per our number and texter, one kind of answer each), so the SMS the
bridge sends because an SMS came in are not one per incoming one (loops, SMS pumping).

The stop list keeps one spelling per number (`canonical_number`: E.164 for numbers, as
the SMSC side delivers them); writes and lookups both go through it, so `491701234567`,
`00491701234567` and `+491701234567` are one entry.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bridge.db.core import delete_before, table
from bridge.db.prepared import driver_error
from bridge.inbound.tables import AutoReplyLog, ConfirmationLog, StopEntry
from bridge.mt.mails import NewMail, NewOrder, insert_mails
from bridge.smpp.address import canonical_number
from bridge.tenants.tables import Customer, User
from bridge.text import TextRejected, plan_sms

_stop = table(StopEntry)
_auto = table(AutoReplyLog)
_confirm = table(ConfirmationLog)
_user = table(User)
_customer = table(Customer)

SYSTEM_CUSTOMER = "_system"


@dataclass(frozen=True, slots=True)
class StopRow:
    customer: str
    msisdn: str
    service: str
    origin: str
    created_at: datetime


def add_stop(
    conn: Connection, customer_id: int, msisdn: str, service: str, now: datetime, origin: str
) -> bool:
    """Put `msisdn` on the stop list; False if it was on it already."""
    msisdn, service = canonical_number(msisdn), canonical_number(service)
    exists = conn.execute(
        select(_stop.c.id).where(
            _stop.c.customer_id == customer_id,
            _stop.c.msisdn == msisdn,
            _stop.c.service == service,
        )
    ).first()
    if exists:
        return False
    conn.execute(
        insert(_stop).values(
            customer_id=customer_id, msisdn=msisdn, service=service, origin=origin, created_at=now
        )
    )
    return True


def remove_stop(conn: Connection, customer_id: int, msisdn: str, service: str | None) -> int:
    """Take `msisdn` off the stop list (one service, or every entry when service is None)."""
    msisdn = canonical_number(msisdn)
    if service is not None:
        service = canonical_number(service)
    query = delete(_stop).where(_stop.c.customer_id == customer_id, _stop.c.msisdn == msisdn)
    if service is not None:
        query = query.where(_stop.c.service == service)
    return int(conn.execute(query).rowcount or 0)


# The intake asks this for every recipient, on the driver's own cursor: SQLAlchemy's
# execution of even a cached statement (its parameters, result and row set-up) costs
# about twice what SQLite's answer does, and more than PostgreSQL's round trip. On
# SQLite one search of the msisdn index ("+" keeps the IN lists off the unique index: a
# search with them costs several times more); on PostgreSQL the same test as written.
_IS_STOPPED = {
    "sqlite": (
        "SELECT 1 FROM stop_entry WHERE msisdn = ? AND +customer_id IN (?, 0) "
        "AND +service IN ('', ?) LIMIT 1"
    ),
    "postgresql": (
        "SELECT 1 FROM stop_entry WHERE msisdn = %s AND customer_id IN (%s, 0) "
        "AND service IN ('', %s) LIMIT 1"
    ),
}


def is_stopped(conn: Connection, customer_id: int, msisdn: str, services: tuple[str, ...]) -> bool:
    """Has `msisdn` opted out of this customer (globally, for any customer, or a service)?

    Runs on the driver's cursor (same connection, same transaction, if any); a driver
    error is raised as SQLAlchemy raises it (the store turns it into StorageUnavailable,
    or StorageUnreachable for a lost connection, which is not used again).
    """
    msisdn = canonical_number(msisdn)
    sql = _IS_STOPPED[conn.dialect.name]
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.cursor()
    try:
        for service in services or ("",):
            params = (msisdn, customer_id, canonical_number(service))
            try:
                cursor.execute(sql, params)
                found = cursor.fetchone()
            except dbapi_error as exc:
                raise driver_error(conn, exc, cursor, sql, params) from exc
            if found is not None:
                return True
    finally:
        cursor.close()
    return False


def list_stops(conn: Connection, customer_id: int | None = None) -> list[StopRow]:
    query = (
        select(_stop, _customer.c.name)
        .outerjoin(_customer, _customer.c.id == _stop.c.customer_id)
        .order_by(_stop.c.created_at, _stop.c.id)
    )
    if customer_id is not None:
        query = query.where(_stop.c.customer_id == customer_id)
    return [
        StopRow(r.name or "*", r.msisdn, r.service, r.origin, r.created_at)
        for r in conn.execute(query)
    ]


# What `answer_allowed` limits, each kind in a table of its own, so an auto-reply and a
# STOP/START confirmation to the same sender do not hold each other back.
class Answer(enum.Enum):
    AUTOREPLY = "autoreply"
    CONFIRMATION = "confirmation"  # of a STOP or a START


def _take_answer(log: Table, dialect_insert: Any) -> Any:
    """The answer's entry written (`now`) unless one is newer than `cut`; a row back when
    written. One statement: two instances answering one sender at once cannot both see
    no entry (the second waits for the first's row and finds it newer)."""
    stmt = dialect_insert(log)
    return stmt.on_conflict_do_update(
        index_elements=["number", "msisdn"],
        set_={"last_at": stmt.excluded.last_at},
        where=log.c.last_at <= bindparam("cut", type_=log.c.last_at.type),
    ).returning(log.c.last_at)


_TAKE_ANSWER = {
    (kind, name): _take_answer(log, dialect_insert)
    for kind, log in ((Answer.AUTOREPLY, _auto), (Answer.CONFIRMATION, _confirm))
    for name, dialect_insert in (("sqlite", sqlite_insert), ("postgresql", pg_insert))
}


def answer_allowed(
    conn: Connection,
    number: str,
    msisdn: str,
    now: datetime,
    interval: float,
    kind: Answer = Answer.AUTOREPLY,
) -> bool:
    """True (and the time recorded) if `number` did not send `msisdn` an answer of this kind
    (auto-reply, STOP/START confirmation) in the last `interval` seconds."""
    values = {"number": number, "msisdn": msisdn, "last_at": now}
    cut = now - timedelta(seconds=interval)
    taken = conn.execute(_TAKE_ANSWER[kind, conn.dialect.name], {**values, "cut": cut})
    return taken.first() is not None


def system_user(conn: Connection, customer_id: int | None, now: datetime) -> int:
    """The disabled system user of a customer (created on first use)."""
    if customer_id is None:
        customer_id = conn.execute(
            select(_customer.c.id).where(_customer.c.name == SYSTEM_CUSTOMER)
        ).scalar()
        if customer_id is None:
            key = conn.execute(
                insert(_customer).values(
                    name=SYSTEM_CUSTOMER, enabled=False, settings={}, created_at=now
                )
            ).inserted_primary_key
            assert key is not None
            customer_id = int(key[0])
    address = f"system+{customer_id}@mailsms.invalid"
    user_id = conn.execute(select(_user.c.id).where(_user.c.address == address)).scalar()
    if user_id is not None:
        return int(user_id)
    key = conn.execute(
        insert(_user).values(
            customer_id=customer_id,
            address=address,
            display_name="SMS bridge (system)",
            enabled=False,
            origin="system",
            settings={},
            created_at=now,
            updated_at=now,
        )
    ).inserted_primary_key
    assert key is not None
    return int(key[0])


def queue_system_sms(
    conn: Connection,
    customer_id: int | None,
    sender_id: str,
    recipient: str,
    text: str,
    reason: str,
    now: datetime,
    validity: float = 86_400.0,
) -> str | None:
    """Queue an SMS the bridge itself sends; returns the order id (None if there is no text)."""
    try:
        plan = plan_sms(text, max_parts=3, overflow="truncate")
    except TextRejected:
        return None
    user_id = system_user(conn, customer_id, now)
    mail_id = "S" + secrets.token_hex(8).upper()
    order = NewOrder(
        id=f"{mail_id}.1",
        recipient=recipient,
        rcpt_address=recipient,
        sender_id=sender_id,
        text=plan.text,
        encoding=plan.encoding,
        parts=plan.parts,
        priority=1,
        expires_at=now + timedelta(seconds=validity),
        policy={"notify": "none", "origin": "system", "reason": reason},
    )
    mail = NewMail(
        id=mail_id,
        received_at=now,
        envelope_from="",
        user_id=user_id,
        client_addr="",
        helo="",
        message_id="",
        subject=reason[:998],
        raw=f"system SMS: {reason}".encode(),
        orders=(order,),
    )
    insert_mails(conn, [mail])
    return order.id


def purge_autoreply_log(conn: Connection, cut: datetime, *, dry_run: bool) -> int:
    """Forget auto-replies last sent before `cut` (the limit per texter looks back less)."""
    return delete_before(conn, _auto, _auto.c.last_at, cut, dry_run=dry_run)


def purge_confirmation_log(conn: Connection, cut: datetime, *, dry_run: bool) -> int:
    """Forget STOP/START confirmations last sent before `cut` (as `purge_autoreply_log`)."""
    return delete_before(conn, _confirm, _confirm.c.last_at, cut, dry_run=dry_run)
