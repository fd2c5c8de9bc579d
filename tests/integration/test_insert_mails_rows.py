"""insert_mails stores what SQLAlchemy's own insert stores (its mails, orders and history
lines go through `bridge.db.bulk.insert_together`: on PostgreSQL one statement for a mail
with one order, `bulk_insert`'s statements compiled once per column set for more)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, Table, insert, text

import bridge.mt.mails as mails
from bridge.db.store import run_sync
from bridge.mt.mails import NewMail, NewOrder, insert_mails
from bridge.mt.status import OrderStatus
from bridge.tenants.admin import add_customer, add_user

T0 = datetime(2026, 3, 29, 0, 59, 59, 999_999, tzinfo=UTC)


def _mails(prefix: str, user_id: int, count: int) -> list[NewMail]:
    shared: dict[str, Any] = {"notify": "failures", "nested": {"a": [1, 2.5, None]}, "ü": "€"}
    out = []
    for i in range(count):
        at = T0 + timedelta(seconds=i, microseconds=i)
        orders = tuple(
            NewOrder(
                id=f"{prefix}{i}.{n}",
                recipient=f"+4917012345{n:02d}",
                rcpt_address=f"+4917012345{n:02d}@sms.example",
                sender_id="ACME" if n % 2 else "+4915550000001",
                text="Grüße – ÄÖÜ 😀" if n % 2 else "plain text",
                encoding="ucs2" if n % 2 else "gsm7",
                parts=n + 1,
                priority=n % 2,
                expires_at=at + timedelta(days=2),
                policy=shared if n % 3 else {"own": i, "list": ["x"]},
                next_attempt_at=None if n % 2 else at + timedelta(hours=1),
                dsn_notify="SUCCESS,FAILURE" if n == 1 else None,
                dsn_orcpt="rfc822;x@example" if n == 2 else None,
                status=OrderStatus.HELD if n == 3 else OrderStatus.QUEUED,
                error="velocity limit" if n == 3 else "",
            )
            for n in range(i % 4 + 1)
        )
        out.append(
            NewMail(
                id=f"{prefix}{i}",
                received_at=at,
                envelope_from="demo@example.com",
                user_id=user_id,
                client_addr="127.0.0.1",
                helo="client.example",
                message_id=f"<{i}@client.example>",
                subject="Tor 4",
                raw=b"Subject: Tor 4\r\n\r\nbody\r\n",
                orders=orders,
            )
        )
    return out


def _rows(engine: Engine, prefix: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT * FROM mail WHERE id LIKE :p ORDER BY id"), {"p": prefix + "%"}
        ).all()
        orders = conn.execute(
            text('SELECT * FROM "order" WHERE id LIKE :p ORDER BY id'), {"p": prefix + "%"}
        ).all()
        events = conn.execute(
            text(
                "SELECT order_id, at, event, detail FROM order_event WHERE order_id LIKE :p"
                " ORDER BY order_id"
            ),
            {"p": prefix + "%"},
        ).all()
    strip = len(prefix)
    return [
        tuple(v[strip:] if isinstance(v, str) and v.startswith(prefix) else v for v in row)
        for row in [*stored, *orders, *events]
    ]


@pytest.mark.parametrize("count", [1, 5, 14, 40])
def test_the_bulk_insert_stores_what_sqlalchemys_insert_stores(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    run_sync(engine, add_customer, "acme", {})
    user_id = run_sync(engine, add_user, "demo@example.com", "acme")
    bulk = _mails("B", user_id, count)
    run_sync(engine, insert_mails, bulk)  # insert_together, its plans compiled once and kept
    run_sync(engine, insert_mails, _mails("K", user_id, count))  # the kept plans again
    monkeypatch.setattr(mails, "insert_together", _sqlalchemy_inserts)
    run_sync(engine, insert_mails, _mails("R", user_id, count))
    bulk_rows, again, reference = _rows(engine, "B"), _rows(engine, "K"), _rows(engine, "R")
    assert len(reference) == len(bulk) + 2 * sum(len(m.orders) for m in bulk)
    assert bulk_rows == reference
    assert again == reference


def _sqlalchemy_inserts(
    conn: Connection, inserts: list[tuple[Table, list[dict[str, Any]]]]
) -> None:
    for table, rows in inserts:
        if rows:
            conn.execute(insert(table), rows)


def _copy(mail_id: str, user_id: int, key: str | None, at: datetime, window: float) -> NewMail:
    return NewMail(
        id=mail_id,
        received_at=at,
        envelope_from="demo@example.com",
        user_id=user_id,
        client_addr="127.0.0.1",
        helo="client.example",
        message_id="<m@client.example>",
        subject="Tor 4",
        raw=b"Subject: Tor 4\r\n\r\nbody\r\n",
        dedupe_key=key,
        dedupe_since=at - timedelta(seconds=window),
    )


def test_a_copy_names_the_earliest_copy_within_its_own_window(engine: Engine) -> None:
    run_sync(engine, add_customer, "acme", {})
    user_id = run_sync(engine, add_user, "demo@example.com", "acme")
    stored = [
        _copy("A1", user_id, "k1", T0, 60),
        _copy("A2", user_id, "k1", T0 + timedelta(seconds=100), 60),
        _copy("B1", user_id, "k2", T0 + timedelta(seconds=50), 60),
        _copy("C1", user_id, None, T0, 60),
    ]
    assert run_sync(engine, insert_mails, stored) == {}
    later = T0 + timedelta(seconds=130)
    asked = [
        _copy("N1", user_id, "k1", later, 60),  # A2 is 30 s before
        _copy("N2", user_id, "k1", later, 3600),  # A1 is the earliest in an hour
        _copy("N3", user_id, "k2", later, 60),  # B1 is 80 s before: not within a minute
        _copy("N4", user_id, "k2", later, 80),  # exactly at the window's start: counts
        _copy("N5", user_id, "k3", later, 3600),  # no copy
        _copy("N6", user_id, None, later, 3600),  # no Message-ID: never a copy
    ]
    found = run_sync(engine, mails.find_duplicates, asked)
    assert found == {"N1": "A2", "N2": "A1", "N4": "B1"}
    assert run_sync(engine, insert_mails, asked) == found  # and those are not written again
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM mail ORDER BY id")).scalars().all()
    assert ids == ["A1", "A2", "B1", "C1", "N3", "N5", "N6"]
