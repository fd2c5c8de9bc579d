"""The outbound report over HTTP: filters, pages, the CSV, an order's timeline, and that a
customer admin sees only its own customer's orders (the table, the CSV, the detail).

Orders come from mails sent over real SMTP to the running bridge; the sandbox SMSC
refuses the numbers under +4917099 for good (those orders fail at once). Orders "of
last week" are moved back in time in the database, with their mail and history.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiosmtplib
from sqlalchemy import Connection, select, update

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.store import run_sync
from bridge.intake.access_store import set_access
from bridge.mt.status import FINAL_ORDER_STATUSES
from bridge.mt.tables import Mail, Order, OrderEvent
from bridge.portal.pages.report import CSV_COLUMNS, utc
from bridge.provision.apply import apply_file
from bridge.provision.file import load_tenants
from bridge.sandbox.rules import Failure, SandboxRule, write_file
from bridge.settings import Settings
from bridge.tenants.admin import LOOPBACK, add_user
from tests.conftest import make_settings
from tests.helpers import wait_for
from tests.portal.harness import PortalRun, login, portal

FAILING = "+4917099"  # the sandbox refuses these numbers (submit_sm: ESME_RINVDSTADR)
_order = table(Order)
_mail = table(Mail)
_event = table(OrderEvent)

# acme gets a service "sales" (cost centre 4711) with the user ben; anna has none.
ACME = """
[[customers]]
name = "acme"
settings = { default_country = "DE" }
[[customers.profiles]]
name = "sales"
settings = { cost_centre = "4711" }
[[customers.users]]
address = "anna@acme.example"
[[customers.users]]
address = "ben@acme.example"
profile = "sales"
"""


def failing_sandbox(tmp_path: Path) -> dict[str, Any]:
    """The settings overrides of a bridge whose sandbox fails every number under FAILING."""
    rules = tmp_path / "rules.json"
    write_file(rules, [SandboxRule(f"{FAILING}*", Failure.REJECTED)])
    settings: Settings = make_settings(tmp_path)
    return {"sandbox": settings.sandbox.model_copy(update={"rules_file": rules})}


def tenants(run: PortalRun, tmp_path: Path) -> None:
    """demo gets a second user (bert); acme a service, a second user, and loopback access."""
    path = tmp_path / "acme.toml"
    path.write_text(ACME, encoding="utf-8")
    spec, members = load_tenants(path, default_country="DE")
    engine = engine_of(run)
    apply_file(engine, spec, members, dry_run=False)
    run_sync(engine, add_user, "bert@example.com", "demo")
    run_sync(engine, set_access, "acme", {"networks": list(LOOPBACK)})


def engine_of(run: PortalRun) -> Any:
    assert run.bridge.store is not None
    return run.bridge.store.engine


_QUEUED_AS = re.compile(r"queued as (\S+)")
_sent = 0


async def send(
    run: PortalRun, sender: str, numbers: Sequence[str], body: str, **headers: str
) -> str:
    """Send one mail over SMTP from `sender` to `numbers` (extra headers: X_SMS_Send_At=…
    for X-SMS-Send-At); its mail id."""
    global _sent
    _sent += 1
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = f"{numbers[0]}@eu.rsms.net"
    msg["Subject"] = "report test"
    msg["Message-ID"] = f"<report-{_sent}-{utcnow().timestamp()}@test>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    async with aiosmtplib.SMTP(hostname=run.smtp[0], port=run.smtp[1]) as smtp:
        _, reply = await smtp.send_message(
            msg, sender=sender, recipients=[f"{n}@eu.rsms.net" for n in numbers]
        )
    found = _QUEUED_AS.search(reply)
    assert found, reply
    return found[1]


def orders_of(conn: Connection, mail_id: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        select(_order.c.id, _order.c.status)
        .where(_order.c.mail_id == mail_id)
        .order_by(_order.c.id)
    )
    return [(r.id, r.status) for r in rows]


async def final(run: PortalRun, mail_id: str) -> list[str]:
    """Wait until every order of the mail is final; their ids."""
    engine = engine_of(run)
    rows = await wait_for(
        lambda: (
            (o := run_sync(engine, orders_of, mail_id))
            and all(s in FINAL_ORDER_STATUSES for _, s in o)
            and o
        ),
        within=15,
    )
    return [i for i, _ in rows]


def backdate(conn: Connection, mail_id: str, days: float) -> None:
    """Move a mail, its orders and their history `days` back in time."""
    delta = timedelta(days=days)
    for tbl, key, columns in (
        (_mail, _mail.c.id, ("received_at",)),
        (_order, _order.c.mail_id, ("created_at", "updated_at", "final_at", "next_attempt_at")),
    ):
        for row in conn.execute(select(tbl).where(key == mail_id)).all():
            values = {c: row._mapping[c] - delta for c in columns if row._mapping[c] is not None}
            conn.execute(update(tbl).where(tbl.c.id == row.id).values(**values))
    ids = select(_order.c.id).where(_order.c.mail_id == mail_id)
    for row in conn.execute(select(_event).where(_event.c.order_id.in_(ids))).all():
        conn.execute(update(_event).where(_event.c.id == row.id).values(at=row.at - delta))


def parse_csv(content: bytes) -> list[dict[str, str]]:
    text = content.decode("utf-8")
    assert text.startswith("\ufeff")  # the BOM: spreadsheets read the file as UTF-8
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))


def ids_in(html: str) -> list[str]:
    return re.findall(r'<tr data-order="([^"]+)">', html)


async def test_filters_the_csv_and_the_timeline_stay_inside_the_customer(tmp_path: Path) -> None:
    async with portal(tmp_path, **failing_sandbox(tmp_path)) as run, run.client() as web:
        tenants(run, tmp_path)
        engine = engine_of(run)
        ok = await send(run, "demo@example.com", ["+491701111001"], "hello")
        bad = await send(run, "demo@example.com", [f"{FAILING}00001"], "=HYPERLINK(1) broken")
        old = await send(run, "demo@example.com", [f"{FAILING}00002"], "old and broken")
        bert = await send(run, "bert@example.com", [f"{FAILING}00003"], "bert broken")
        anna = await send(run, "anna@acme.example", [f"{FAILING}00004"], "anna broken")
        ben = await send(run, "ben@acme.example", ["+491701112002"], "ben fine")
        ids = {m: (await final(run, m))[0] for m in (ok, bad, old, bert, anna, ben)}
        run_sync(engine, backdate, old, 10)
        demo_recent = {ids[ok], ids[bad], ids[bert]}

        await login(web, "admin")
        page = await web.get("/portal/report")
        assert page.status_code == 200
        assert "Orders are kept for 92 days" in page.text
        assert set(ids_in(page.text)) == demo_recent  # the last 7 days; not acme's
        r = await web.get("/portal/report", params={"status": "failed", "user": "Demo@example.com"})
        assert ids_in(r.text) == [ids[bad]]
        week_ago = (utcnow() - timedelta(days=14)).date().isoformat()
        r = await web.get("/portal/report", params={"status": "failed", "from": week_ago})
        assert set(ids_in(r.text)) == {ids[bad], ids[bert], ids[old]}
        r = await web.get("/portal/report", params={"recipient": f"{FAILING}00003"})
        assert ids_in(r.text) == [ids[bert]]
        # another customer's service or user filters to nothing, never to its rows
        for params in ({"profile": "sales"}, {"user": "anna@acme.example"}):
            r = await web.get("/portal/report", params=params)
            assert r.status_code == 200 and ids_in(r.text) == [], params

        csv_r = await web.get("/portal/report.csv", params={"status": "failed", "from": week_ago})
        assert csv_r.status_code == 200
        assert csv_r.headers["content-type"] == "text/csv; charset=utf-8"
        assert csv_r.headers["content-disposition"].startswith('attachment; filename="orders-demo-')
        rows = parse_csv(csv_r.content)
        assert list(rows[0]) == list(CSV_COLUMNS)
        assert [r["id"] for r in rows] == [ids[bert], ids[bad], ids[old]]  # newest first
        by_id = {r["id"]: r for r in rows}
        assert by_id[ids[bad]]["text"] == "'=HYPERLINK(1) broken"  # no formula
        assert by_id[ids[bad]]["recipient"] == f"{FAILING}00001"  # E.164 kept for re-import
        assert by_id[ids[bad]]["status"] == "failed" and by_id[ids[bad]]["customer"] == "demo"
        assert by_id[ids[bert]]["user"] == "bert@example.com"

        detail = await web.get(f"/portal/orders/{ids[bad]}")
        assert detail.status_code == 200
        assert "=HYPERLINK(1) broken" in detail.text and 'class="timeline"' in detail.text
        events = re.findall(r'<strong class="event event-(\w+)">', detail.text)
        assert events[0] == "queued" and events[-1] == "failed"

        # acme's administrator: 404 for demo's order, none of demo's rows anywhere.
        web.cookies.clear()
        await login(web, "acme-admin")
        for order_id in (ids[ok], ids[bad], "no-such.1"):
            r = await web.get(f"/portal/orders/{order_id}")
            assert r.status_code == 404 and "There is no such order" in r.text
        assert (await web.get(f"/portal/orders/{ids[anna]}")).status_code == 200
        for params in ({}, {"customer": "demo"}, {"from": week_ago}):
            r = await web.get("/portal/report", params=params)
            assert set(ids_in(r.text)) == {ids[anna], ids[ben]}, params
            r = await web.get("/portal/report.csv", params=params)
            assert {row["id"] for row in parse_csv(r.content)} == {ids[anna], ids[ben]}
        r = await web.get("/portal/report", params={"profile": "sales"})
        assert ids_in(r.text) == [ids[ben]]
        r = await web.get("/portal/report", params={"cost_centre": "4711"})
        assert ids_in(r.text) == [ids[ben]]
        # a page mark of demo's order does not page acme's list: the top of it
        for params in ({"after": ids[ok]}, {"before": ids[ok]}):
            r = await web.get("/portal/report", params=params)
            assert set(ids_in(r.text)) == {ids[anna], ids[ben]}, params
            assert 'rel="prev"' not in r.text

        # The operator sees both customers, or chooses one.
        web.cookies.clear()
        await login(web, "ops")
        r = await web.get("/portal/report", params={"from": week_ago})
        assert set(ids_in(r.text)) == set(ids.values())
        r = await web.get("/portal/report", params={"customer": "acme"})
        assert set(ids_in(r.text)) == {ids[anna], ids[ben]}
        r = await web.get("/portal/report.csv", params={"customer": "demo", "status": "failed"})
        assert {row["id"] for row in parse_csv(r.content)} == {ids[bad], ids[bert]}
        for order_id in ids.values():
            assert (await web.get(f"/portal/orders/{order_id}")).status_code == 200
        r = await web.get(f"/portal/orders/{ids[anna]}", params={"customer": "demo"})
        assert r.status_code == 404  # the operator chose demo
        r = await web.get("/portal/report", params={"customer": "nobody"})
        assert r.status_code == 404


async def test_bad_filters_get_a_sentence_not_an_error(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        await login(web, "admin")
        for params, sentence in (
            ({"from": "yesterday"}, "From: enter a date as YYYY-MM-DD"),
            ({"to": "2026-13-01"}, "To: enter a date as YYYY-MM-DD"),
            ({"from": "2026-12-02", "to": "2026-12-01"}, "The period ends before it starts"),
            ({"status": "lost"}, "Status: choose one of the list"),
            ({"recipient": "call me"}, "Recipient: enter the number in international form"),
            ({"user": "x" * 300}, "A filter value is too long"),
        ):
            r = await web.get("/portal/report", params=params)
            assert r.status_code == 400 and sentence in r.text, params
            r = await web.get("/portal/report.csv", params=params)
            assert r.status_code == 400 and sentence in r.text, params
        # a period before the retention starts at the oldest kept day, and says so
        r = await web.get("/portal/report", params={"from": "2000-01-01"})
        assert r.status_code == 200 and "starts at" in r.text
        oldest = (utcnow() - timedelta(days=92)).date() + timedelta(days=1)
        assert f'name="from" value="{oldest.isoformat()}"' in r.text
        # a recipient written with 00 or spaces is read as the number
        r = await web.get("/portal/report", params={"recipient": "0049 170 1234567"})
        assert r.status_code == 200 and 'value="+491701234567"' in r.text


async def test_pages_of_fifty_newest_first_and_the_csv_holds_all(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        # 55 numbers, each under its own prefix (no SMS pumping hold, no consecutive run)
        numbers = [f"+49170{n:04d}123" for n in range(55)]
        mail_id = await send(run, "demo@example.com", numbers, "paging")
        ids = [i for i, _ in run_sync(engine_of(run), orders_of, mail_id)]
        assert len(ids) == 55
        newest_first = sorted(ids, reverse=True)  # one time: by id (as text), the keyset order
        await login(web, "admin")
        first = await web.get("/portal/report")
        assert ids_in(first.text) == newest_first[:50]
        assert 'rel="prev"' not in first.text
        next_url = re.search(r'href="([^"]+)" rel="next"', first.text)
        assert next_url
        second = await web.get(next_url[1].replace("&amp;", "&"))
        assert ids_in(second.text) == newest_first[50:]
        assert 'rel="next"' not in second.text
        prev_url = re.search(r'href="([^"]+)" rel="prev"', second.text)
        assert prev_url
        back = await web.get(prev_url[1].replace("&amp;", "&"))
        assert ids_in(back.text) == newest_first[:50] and 'rel="prev"' not in back.text
        for params in ({"after": "nonsense.1"}, {"before": "nonsense.1"}, {"after": "x" * 99}):
            r = await web.get("/portal/report", params=params)
            assert ids_in(r.text) == newest_first[:50] and 'rel="prev"' not in r.text, params
        rows = parse_csv((await web.get("/portal/report.csv")).content)
        assert [r["id"] for r in rows] == newest_first


def test_times_show_in_utc() -> None:
    """Times are shown in UTC whatever the database hands back (SQLite: naive)."""
    at = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)
    assert utc(at) == utc(at.replace(tzinfo=None)) == "2026-12-01 12:30:00"
    assert utc(at.astimezone(ZoneInfo("Europe/Berlin"))) == utc(at)
