"""Statements per mail after the intake, on a real database (SQLite and a throwaway
PostgreSQL): each step writes what it always wrote, in fewer statements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, event, insert, select

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.store import run_sync
from bridge.inbound.store import record_order_assignments
from bridge.inbound.tables import ReplyAssignment
from bridge.mt.mails import NewMail, insert_mails
from bridge.mt.tables import Mail, Order
from bridge.tenants.admin import add_customer
from bridge.tenants.tables import User
from tests.integration.test_store import _mail

_assign = table(ReplyAssignment)
_order = table(Order)
_mail_t = table(Mail)
_user = table(User)


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements `engine` sends while the block runs (one per execute/executemany)."""
    seen: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _user_row(engine: Engine, customer_id: int, address: str) -> int:
    """A user with any address (system users' ".invalid" ones; `add_user` checks addresses)."""
    now = utcnow()
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(_user)
                .values(
                    customer_id=customer_id,
                    address=address,
                    display_name="",
                    enabled=True,
                    origin="manual",
                    settings={},
                    created_at=now,
                    updated_at=now,
                )
                .returning(_user.c.id)
            ).scalar_one()
        )


def _expected_assignments(engine: Engine, order_ids: list[str], now: Any) -> list[tuple[Any, ...]]:
    """What the assignment rows must be, worked out in Python from a plain read: one per
    order in the given order, the subject cut to 998 and the text to 480 characters, none
    for a user without an address or with one ending in ".invalid"."""
    expires = now + timedelta(days=7)
    with engine.connect() as conn:
        found = {
            r.id: r
            for r in conn.execute(
                select(
                    _order.c.id,
                    _order.c.recipient,
                    _order.c.sender_id,
                    _order.c.user_id,
                    _order.c.text,
                    _user.c.customer_id,
                    _user.c.address,
                    _mail_t.c.message_id,
                    _mail_t.c.subject,
                )
                .select_from(_order.join(_mail_t).join(_user, _order.c.user_id == _user.c.id))
                .where(_order.c.id.in_(order_ids))
            )
        }
    rows = []
    for order_id in order_ids:
        r = found.get(order_id)
        if r is None or not r.address or r.address.endswith(".invalid"):
            continue
        rows.append(
            (
                r.recipient,
                r.sender_id,
                r.customer_id,
                r.user_id,
                r.address,
                "order",
                r.id,
                r.message_id,
                r.subject[:998],
                r.text[:480],
                now,
                expires,
            )
        )
    return rows


def _stored_assignments(engine: Engine) -> list[tuple[Any, ...]]:
    columns = [c for c in _assign.c if c.name != "id"]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*columns).order_by(_assign.c.id))]


def test_reply_assignments_are_read_and_written_in_one_statement(engine: Engine) -> None:
    """Each submitted order's assignment as a read in Python would make it (long subjects and
    texts with characters of several bytes cut by characters, system users and users
    without an address left out, an unknown order ignored), in the orders' given order
    (not sorted: the later of two orders to one number owns its replies), with one
    statement for the batch."""
    customer_id = run_sync(engine, add_customer, "acme", {"default_country": "DE"})
    alice = _user_row(engine, customer_id, "alice@example.com")
    system = _user_row(engine, customer_id, "system+1@mailsms.invalid")
    upper = _user_row(engine, customer_id, "ops@example.INVALID")  # not ".invalid": kept
    nobody = _user_row(engine, customer_id, "")
    mails: list[NewMail] = []
    for user_id, mail_id in ((alice, "A"), (system, "S"), (upper, "U"), (nobody, "N")):
        m = _mail(user_id, mail_id, recipients=3)
        m = replace(m, subject="Grüße € " * 200)  # 1,600 characters, more bytes
        m = replace(
            m,
            orders=tuple(
                replace(o, recipient="+491701234500", text="ä€𝄞x" * 200) if n == 1 else o
                for n, o in enumerate(m.orders)
            ),
        )
        mails.append(m)
    run_sync(engine, insert_mails, mails)
    order_ids = ["A.3", "U.2", "S.1", "A.2", "N.1", "gone.1", "U.1", "A.1"]
    now = utcnow()
    expected = _expected_assignments(engine, order_ids, now)
    assert [r[6] for r in expected] == ["A.3", "U.2", "A.2", "U.1", "A.1"]
    assert len(expected[2][9]) == 480 and len(expected[2][8]) == 998

    with statements(engine) as seen:
        run_sync(engine, record_order_assignments, order_ids, now)

    assert _stored_assignments(engine) == expected
    assert len(seen) == 1, seen
