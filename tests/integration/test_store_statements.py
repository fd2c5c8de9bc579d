"""Statements per mail after the intake, on a real database (SQLite and a throwaway
PostgreSQL): each step writes what it always wrote, in fewer statements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, select

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.store import run_sync
from bridge.inbound.store import record_order_assignments
from bridge.inbound.tables import ReplyAssignment
from bridge.mt import orders as order_sql
from bridge.mt import receipts
from bridge.mt.mails import NewMail, insert_mails
from bridge.mt.receipts import apply_receipts, insert_receipt
from bridge.mt.submitted import Submitted, record_submitted_many
from bridge.mt.tables import Mail, Order, OrderEvent, Part, Receipt
from bridge.notices.tables import Notice
from bridge.outcomes.steps import STEPS
from bridge.tenants.admin import add_customer
from bridge.tenants.tables import User
from bridge.values import Receipt as ReceiptValue
from bridge.values import ReceiptState
from tests.integration.test_store import _mail, _seed

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


def _snapshot(conn: Any) -> dict[str, Any]:
    """What a receipts round leaves behind: orders, parts, receipts, history, notices."""
    order, part, receipt = table(Order), table(Part), table(Receipt)
    event_t, notice = table(OrderEvent), table(Notice)
    return {
        "orders": conn.execute(
            select(order.c.id, order.c.status, order.c.error).order_by(order.c.id)
        ).all(),
        "parts": conn.execute(
            select(part.c.order_id, part.c.seq, part.c.state, part.c.matchable).order_by(part.c.id)
        ).all(),
        "receipts": conn.execute(
            select(receipt.c.smsc_id, receipt.c.status, receipt.c.part_id).order_by(receipt.c.id)
        ).all(),
        "history": conn.execute(
            select(event_t.c.order_id, event_t.c.event, event_t.c.detail).order_by(event_t.c.id)
        ).all(),
        "notices": conn.execute(  # (ids: PostgreSQL's sequences do not roll back)
            select(notice.c.kind, notice.c.order_id, notice.c.context).order_by(notice.c.id)
        ).all(),
    }


def test_a_receipts_round_settles_its_orders_as_a_second_read_would(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round that read every part row of an order decides from what it read; one that saw
    only some parts reads the states: both give exactly what reading every order again
    gives (one part, several parts in one round or spread over rounds, a failure, a part
    reported twice in one round, an order already final, parts sharing an id)."""
    user_id = _seed(engine)  # notify = all: every final order queues a status mail
    run_sync(engine, insert_mails, [_mail(user_id, recipients=10)])
    t0 = utcnow()
    sent = {  # order -> its parts' message ids
        "M1.1": ("a1",),
        "M1.2": ("b1", "b2"),
        "M1.3": ("c1", "c2"),
        "M1.4": ("d1", "d2"),
        "M1.5": ("e1",),
        "M1.6": ("f1", "f2"),
        "M1.7": ("g1",),
        "M1.8": ("h1",),
        "M1.9": ("i1",),
        "M1.10": ("j1", "j1"),
    }
    submitted = [Submitted(o, "smsc", ids, submitted_at=t0) for o, ids in sent.items()]
    run_sync(engine, record_submitted_many, t0, submitted, steps=STEPS)
    run_sync(engine, order_sql.record_final, "M1.9", t0, "expired", "too late", steps=STEPS)
    t1 = t0 + timedelta(seconds=1)
    run_sync(engine, insert_receipt, ReceiptValue("smsc", "d1", ReceiptState.DELIVERED), t1)
    run_sync(engine, apply_receipts, t1, 100, 3600.0, steps=STEPS)  # an earlier round
    t2 = t1 + timedelta(seconds=1)
    for message_id, state in (
        ("a1", ReceiptState.DELIVERED),  # one part: delivered
        ("b2", ReceiptState.DELIVERED),
        ("b1", ReceiptState.DELIVERED),  # both parts in this round: delivered
        ("c1", ReceiptState.DELIVERED),  # one of two: still under way
        ("d2", ReceiptState.DELIVERED),  # the other part came in the earlier round
        ("e1", ReceiptState.UNDELIVERABLE),
        ("f2", ReceiptState.UNDELIVERABLE),  # one of two failed: undeliverable
        ("g1", ReceiptState.ENROUTE),
        ("h1", ReceiptState.ENROUTE),
        ("h1", ReceiptState.DELIVERED),  # reported twice in one round
        ("i1", ReceiptState.DELIVERED),  # its order is final already
        ("j1", ReceiptState.DELIVERED),  # both parts got one id: unmatched
    ):
        run_sync(engine, insert_receipt, ReceiptValue("smsc", message_id, state), t2)

    def round_(read_again: bool) -> tuple[dict[str, Any], list[str]]:
        if read_again:
            monkeypatch.setattr(receipts._Known, "complete", lambda self: False)
        with statements(engine) as seen, engine.connect() as conn, conn.begin() as tx:
            applied = apply_receipts(conn, t2, 100, 3600.0, steps=STEPS)
            found = {"applied": applied, **_snapshot(conn)}
            tx.rollback()
        monkeypatch.undo()
        return found, seen

    known, fast = round_(read_again=False)
    read, slow = round_(read_again=True)
    assert known == read
    statuses = dict((r.id, r.status) for r in known["orders"])
    assert statuses == {
        "M1.1": "delivered",
        "M1.2": "delivered",
        "M1.3": "submitted",
        "M1.4": "delivered",
        "M1.5": "undeliverable",
        "M1.6": "undeliverable",
        "M1.7": "submitted",
        "M1.8": "delivered",
        "M1.9": "expired",
        "M1.10": "submitted",
    }
    assert len(known["notices"]) == 6 + 1  # and M1.9's, final before the round
    # The orders the round saw whole are not read again; the others are (one read).
    reads = [s for s in fast if "left outer join part" in " ".join(s.split()).lower()]
    assert len(reads) == 1 and len(slow) == len(fast)


def test_bulk_execute_writes_what_execute_writes(engine: Engine) -> None:
    """Each statement the hot paths run through `bulk_execute` (compiled once, bind
    processors once per value) leaves the same rows and counts the same rows as
    `conn.execute` with the same parameters, and an UPDATE counts the same rows; one with
    an IN list is refused."""
    from bridge.db.bulk import bulk_execute
    from bridge.inbound.store import _ASSIGNMENT_OF_ORDER
    from bridge.mt.orders import _SET_FINAL_MANY, _SET_PARKED
    from bridge.mt.receipts import _SET_APPLIED, _SET_PART, _SET_STATUS
    from bridge.mt.submitted import _SET_SUBMITTED

    user_id = _seed(engine)
    run_sync(engine, insert_mails, [_mail(user_id, recipients=4)])
    t0 = utcnow()
    run_sync(
        engine,
        record_submitted_many,
        t0,
        [Submitted("M1.1", "smsc", ("a1", "a2"), submitted_at=t0)],
        steps=STEPS,
    )
    run_sync(engine, insert_receipt, ReceiptValue("smsc", "a1", ReceiptState.DELIVERED), t0)
    t1 = t0 + timedelta(seconds=1)
    later = t1 + timedelta(hours=49)
    runs: list[tuple[Any, list[dict[str, Any]]]] = [
        (  # two still open, one submitted already, one unknown: 2 rows
            _SET_SUBMITTED,
            [
                {"o_id": o, "o_transport": "smsc", "o_parts": 1, "o_at": t1, "o_due": later}
                for o in ("M1.2", "M1.1", "M1.3", "nope")
            ],
        ),
        (_SET_PARKED, [{"k_id": "M1.4", "k_at": later}, {"k_id": "M1.1", "k_at": later}]),
        # two rows, both matched (PostgreSQL runs two rows as two statements: both counted)
        (_SET_PARKED, [{"k_id": "M1.2", "k_at": later}, {"k_id": "M1.3", "k_at": later}]),
        (_SET_PART, [{"p_id": 1, "p_state": "delivered", "p_error": "000", "p_at": t1}]),
        (_SET_APPLIED, [{"r_id": 1, "r_part": 1}]),
        (_SET_STATUS, [{"r_id": 1, "r_status": "unmatched"}]),
        (
            _ASSIGNMENT_OF_ORDER,
            [{"order_id": o, "created_at": t1, "expires_at": later} for o in ("M1.3", "M1.1")],
        ),
    ]
    for statement, rows in runs:
        found = []
        for fast in (False, True):
            with engine.connect() as conn, conn.begin() as tx:
                if fast:
                    count = bulk_execute(conn, statement, rows)
                else:
                    count = conn.execute(statement, rows).rowcount
                found.append((count, _snapshot(conn), _stored(conn)))
                tx.rollback()
        assert found[0][1:] == found[1][1:], statement
        if not statement.is_insert:  # (an executemany INSERT's count is the driver's -1)
            assert found[0][0] == found[1][0] > 0, statement
    with engine.connect() as conn, pytest.raises(ValueError, match="IN lists"):
        bulk_execute(conn, _SET_FINAL_MANY, [{"f_ids": ["M1.1"], "f_status": "failed"}])


def _stored(conn: Any) -> list[Any]:
    """Every order's and assignment's row, times included (what `_snapshot` leaves out)."""
    order = table(Order)
    columns = [c for c in _assign.c if c.name != "id"]
    return [
        *conn.execute(select(order).order_by(order.c.id)).all(),
        *conn.execute(select(*columns).order_by(_assign.c.id)).all(),
        *conn.execute(select(table(Part)).order_by(table(Part).c.id)).all(),
    ]


def test_a_claim_reads_the_columns_dispatch_needs_and_gives_what_a_full_read_gives(
    engine: Engine,
) -> None:
    """Claimed orders carry the values of their rows (express first, then oldest due), read
    without the columns dispatch does not use (each value read costs CPU)."""
    from dataclasses import fields

    user_id = _seed(engine)
    mail = _mail(user_id, recipients=3)
    orders = (replace(mail.orders[0], priority=1, policy={"notify": "all", "x": [1]}),)
    run_sync(engine, insert_mails, [replace(mail, orders=orders + mail.orders[1:])])
    now = utcnow()
    with statements(engine) as seen:
        claimed = run_sync(engine, order_sql.claim_orders, now, 10, 60.0)
    # (on PostgreSQL the claim is one statement: WITH picked AS (SELECT …), taken AS …)
    reads = [s for s in seen if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert reads and not any("final_at" in s or "rcpt_address" in s for s in reads)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(_order))}
    assert [o.id for o in claimed] == ["M1.1", "M1.2", "M1.3"]
    for work in claimed:
        row = rows[work.id]
        for f in fields(work):
            expected = row.attempts if f.name == "attempts" else getattr(row, f.name)
            assert getattr(work, f.name) == expected, f.name
