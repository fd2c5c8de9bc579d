"""A distribution list in the REST API's `to`: the same orders as a mail to the list.

The list fans out through the intake's own functions (`add_list_target`, `fan_out_lists`),
so a mail to `team@eu.rsms.net` and `{"to": ["team"]}` with the same text make the same
personalised orders, skip the same stopped member and write the same list report row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosmtplib
from sqlalchemy import select

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.store import run_sync
from bridge.inbound.actions_store import add_stop
from bridge.lists.store import Member, create_list, put_members
from bridge.lists.tables import ListMail
from bridge.mt.tables import Order
from bridge.reports.store import customer_id
from bridge.tenants.admin import DEMO_CUSTOMER
from tests.e2e.test_api import _problem, api
from tests.helpers import make_mail

MEMBERS = [
    Member("+491701111111", "Anna", "Berg", {"city": "Berlin"}),
    Member("+491702222222", "Ben", "Stopp", {"city": "Bonn"}),
    Member("+491703333333", "Cem", "Acar", {"city": "Köln"}),
]
TEXT = "Hallo {first_name}, wir sehen uns morgen in {city}. “Bis dann”"


def _seed(conn: Any) -> None:
    list_id = create_list(conn, DEMO_CUSTOMER, "team", ["city"])
    put_members(conn, list_id, MEMBERS)
    cid = customer_id(conn, DEMO_CUSTOMER)
    assert cid is not None
    add_stop(conn, cid, "+491702222222", "", utcnow(), "cli")


def _orders(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    o = table(Order)
    by_mail: dict[str, list[tuple[Any, ...]]] = {}
    query = select(
        o.c.mail_id,
        o.c.id,
        o.c.recipient,
        o.c.rcpt_address,
        o.c.sender_id,
        o.c.text,
        o.c.encoding,
        o.c.parts,
        o.c.priority,
    ).order_by(o.c.id)
    for r in conn.execute(query):
        by_mail.setdefault(r.mail_id, []).append((r.id.rsplit(".", 1)[1], *r[2:]))
    return by_mail


async def test_the_same_list_by_mail_and_by_api_makes_the_same_orders(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        store = a.bridge.store
        assert store is not None
        run_sync(store.engine, _seed)
        async with aiosmtplib.SMTP(hostname=a.smtp[0], port=a.smtp[1]) as smtp:
            errors, _ = await smtp.sendmail(
                "demo@example.com",
                ["team@eu.rsms.net"],
                make_mail(to="team@eu.rsms.net", body=TEXT, subject=""),
            )
            assert errors == {}
        r = await a.http.post(
            "/api/v1/messages", json={"to": ["team"], "text": TEXT}, headers=a.demo
        )
        assert r.status_code == 201, r.text
        sent = r.json()
        assert [o["to"] for o in sent["orders"]] == ["+491701111111", "+491703333333"]

        by_mail = run_sync(store.engine, _orders)
        assert len(by_mail) == 2
        api_orders = by_mail.pop(sent["mail_id"])
        [mail_orders] = by_mail.values()
        assert api_orders == mail_orders
        assert [(o[1], o[4]) for o in api_orders] == [
            ("+491701111111", 'Hallo Anna, wir sehen uns morgen in Berlin. "Bis dann"'),
            ("+491703333333", 'Hallo Cem, wir sehen uns morgen in Köln. "Bis dann"'),
        ]

        def list_mails(conn: Any) -> list[tuple[Any, ...]]:
            lm = table(ListMail)
            return [tuple(r) for r in conn.execute(select(lm.c.lists, lm.c.members, lm.c.skipped))]

        reports = run_sync(store.engine, list_mails)
        assert len(reports) == 2 and reports[0] == reports[1]
        assert reports[0][2] == [
            {"msisdn": "+491702222222", "name": "Ben Stopp", "reason": "opted out (STOP)"}
        ]

        # A list and a number together; the written form <list>@<domain> is the same list.
        r = await a.http.post(
            "/api/v1/messages",
            json={"to": ["team@eu.rsms.net", "+491704444444"], "text": "hi {first_name}"},
            headers=a.demo,
        )
        assert r.status_code == 201, r.text
        assert [(o["to"], o["id"].rsplit(".", 1)[1]) for o in r.json()["orders"]] == [
            ("+491704444444", "1"),
            ("+491701111111", "2"),
            ("+491703333333", "3"),
        ]
        preview = await a.http.post(
            "/api/v1/messages/preview", json={"to": ["team"], "text": "hi"}, headers=a.demo
        )
        assert preview.status_code == 200, preview.text
        assert preview.json()["lists"] == [{"name": "team", "members": 3}]
        assert preview.json()["orders"] == 3

        # Another customer's list is not a list for this key: "team" is no number either.
        r = await a.http.post(
            "/api/v1/messages", json={"to": ["team"], "text": TEXT}, headers=a.acme
        )
        _problem(r, 422, "bad_recipient")
        r = await a.http.post(
            "/api/v1/messages", json={"to": ["team"], "text": "{nope}"}, headers=a.demo
        )
        assert "nope" in _problem(r, 422, "unknown_placeholder")["detail"]
