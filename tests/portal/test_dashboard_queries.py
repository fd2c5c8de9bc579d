"""The dashboard's counts on SQLite and PostgreSQL: UTC day buckets, statuses, encodings,
the customer filter, and which inbound SMS a customer sees."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Connection, Engine, insert

from bridge.db.core import table
from bridge.db.store import run_sync
from bridge.inbound.admin import apply_numbers
from bridge.inbound.config import parse_numbers
from bridge.inbound.store import insert_inbound, record_route
from bridge.mt.status import OrderStatus
from bridge.mt.tables import Mail, Order
from bridge.portal.queries_dashboard import DayCounts, Period, dashboard_counts
from bridge.tenants.admin import add_customer, add_user
from bridge.values import InboundSms

NUMBERS = """
[[number]]
number = "+4915550000010"
customer = "acme"
fallback = ["desk@acme.example"]

[[number]]
number = "+4915550002"
customer = "acme"
sharing = "prefix"
fallback = ["desk@acme.example"]

[[number]]
number = "+4915550000030"
customer = "acme"
sharing = "keyword"
fallback = ["desk@acme.example"]

[[number.keyword]]
keyword = "INFO"
actions = [{type = "autoreply", text = "Open 9-17"}]

[[number]]
number = "+4915550000040"
customer = "globex"
fallback = ["desk@globex.example"]
"""


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


def seed(conn: Connection) -> tuple[int, int]:
    acme = add_customer(conn, "acme", {})
    globex = add_customer(conn, "globex", {})
    anna = add_user(conn, "anna@acme.example", "acme")
    gus = add_user(conn, "gus@globex.example", "globex")
    orders = [
        # (user, created, status, encoding, parts)
        (anna, at(1, 23, 59, 59), OrderStatus.DELIVERED, "gsm7", 1),
        (anna, at(2, 0, 0, 0), OrderStatus.DELIVERED, "ucs2", 2),
        (anna, at(2, 12), OrderStatus.UNDELIVERABLE, "gsm7", 1),  # sent and failed
        (anna, at(2, 13), OrderStatus.FAILED, "gsm7", 3),  # failed, never sent
        (anna, at(2, 14), OrderStatus.QUEUED, "gsm7", 1),  # waiting
        (anna, at(3, 9), OrderStatus.SUBMITTED, "gsm7", 2),
        (gus, at(2, 10), OrderStatus.DELIVERED, "gsm7", 4),
        (anna, at(4, 0), OrderStatus.DELIVERED, "gsm7", 1),  # after the period
    ]
    for n, (user, created, status, encoding, parts) in enumerate(orders):
        conn.execute(
            insert(table(Mail)).values(
                id=f"M{n}", received_at=created, envelope_from="x@example.com",
                user_id=user, raw=b"",
            )
        )  # fmt: skip
        conn.execute(
            insert(table(Order)).values(
                id=f"M{n}.1", mail_id=f"M{n}", user_id=user, recipient="+491701234567",
                rcpt_address="+491701234567@eu.rsms.net", sender_id="ACME", text="hi",
                encoding=encoding, parts=parts, status=status, created_at=created, policy={},
            )
        )  # fmt: skip
    apply_numbers(conn, parse_numbers(NUMBERS))
    for destination, received, owner, route in (
        ("+4915550000010", at(2, 8), acme, "number"),  # acme's dedicated number
        ("004915550000010", at(2, 9), acme, "number"),  # the same number, written with 00
        ("+4915550002777", at(3, 8), acme, "number"),  # under acme's prefix
        ("+4915550000030", at(3, 9), acme, "keyword"),  # acme's keyword on a shared number
        ("+4915550000031", at(3, 9), None, "unmatched"),  # a shared number, no keyword
        ("+4915550000040", at(3, 10), globex, "number"),  # globex's
        ("+4915550000099", at(1, 10), None, "operator"),  # no one's
    ):
        sms = InboundSms("smsc", "+491701234567", destination, "hi", "gsm7")
        inbound_id = insert_inbound(conn, sms, received)
        record_route(conn, inbound_id, owner, route, "")  # as the routing step records it
    return acme, globex


PERIOD = Period(date(2026, 11, 1), date(2026, 11, 3))


def test_orders_fall_into_utc_days_by_status_and_encoding(engine: Engine) -> None:
    acme, globex = run_sync(engine, seed)
    counts = run_sync(engine, dashboard_counts, acme, PERIOD)
    assert counts.days == ("2026-11-01", "2026-11-02", "2026-11-03")
    assert dict(counts.per_day) == {
        "2026-11-01": DayCounts(orders=1, sent=1, delivered=1, failed=0),
        "2026-11-02": DayCounts(orders=4, sent=2, delivered=1, failed=2),
        "2026-11-03": DayCounts(orders=1, sent=1, delivered=0, failed=0),
    }
    assert counts.total() == DayCounts(orders=6, sent=4, delivered=2, failed=2)
    # Parts of sent orders only: 1 + 1 + 2 (GSM-7), 2 (UCS-2); the refused 3 are not billed.
    assert dict(counts.parts_by_encoding) == {"gsm7": 4, "ucs2": 2}

    everyone = run_sync(engine, dashboard_counts, None, PERIOD)
    assert everyone.total() == DayCounts(orders=7, sent=5, delivered=3, failed=2)
    assert dict(everyone.parts_by_encoding) == {"gsm7": 8, "ucs2": 2}
    assert run_sync(engine, dashboard_counts, globex, PERIOD).total() == DayCounts(1, 1, 1, 0)


def test_a_customer_sees_the_inbound_it_took_an_operator_all(engine: Engine) -> None:
    acme, globex = run_sync(engine, seed)
    acme_in = run_sync(engine, dashboard_counts, acme, PERIOD).inbound_per_day
    assert dict(acme_in) == {"2026-11-02": 2, "2026-11-03": 2}
    globex_in = run_sync(engine, dashboard_counts, globex, PERIOD).inbound_per_day
    assert dict(globex_in) == {"2026-11-03": 1}
    everyone = run_sync(engine, dashboard_counts, None, PERIOD).inbound_per_day
    assert dict(everyone) == {"2026-11-01": 1, "2026-11-02": 2, "2026-11-03": 4}
