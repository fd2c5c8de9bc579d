"""The dashboard over HTTP: counts of real traffic, scoping, the period, bad input.

Traffic: mails of two customers sent over SMTP (aiosmtplib to the running bridge), SMS
delivered by the sandbox SMSC, MO SMS typed on a sandbox phone.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiosmtplib
from sqlalchemy import func, select, update

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.store import run_sync
from bridge.inbound.admin import apply_numbers
from bridge.inbound.config import parse_numbers
from bridge.inbound.tables import Inbound
from bridge.mt.status import OrderStatus
from bridge.mt.tables import Order
from bridge.sandbox.phone import send_mo
from bridge.tenants.admin import DEMO_NUMBER, LOOPBACK
from bridge.tenants.tables import Customer
from tests.helpers import make_mail, wait_for
from tests.portal.harness import PortalRun, login, portal

ACME_NUMBER = "+4915550000077"  # acme's dedicated inbound number
PHONE = "+491701234567"


def let_acme_send(run: PortalRun) -> None:
    """acme's users may send from loopback; acme has a dedicated inbound number."""
    customers = table(Customer)

    def setup(conn: Any) -> None:
        conn.execute(
            update(customers)
            .where(customers.c.name == "acme")
            .values(settings={"default_country": "DE", "access": {"networks": list(LOOPBACK)}})
        )
        apply_numbers(
            conn,
            parse_numbers(
                f'[[number]]\nnumber = "{ACME_NUMBER}"\ncustomer = "acme"\n'
                'fallback = ["desk@acme.example"]\n'
            ),
        )

    assert run.bridge.store is not None
    run_sync(run.bridge.store.engine, setup)


async def send(run: PortalRun, sender: str, numbers: list[str], body: str = "Hello") -> None:
    to = [f"{n}@eu.rsms.net" for n in numbers]
    host, port = run.smtp
    async with aiosmtplib.SMTP(hostname=host, port=port) as smtp:
        errors, _ = await smtp.sendmail(
            sender, to, make_mail(to=", ".join(to), sender=sender, body=body)
        )
        assert not errors, errors


def _count(run: PortalRun, tbl: Any, *where: Any) -> int:
    assert run.bridge.store is not None
    return int(
        run_sync(
            run.bridge.store.engine,
            lambda c: c.execute(select(func.count()).select_from(tbl).where(*where)).scalar(),
        )
    )


async def until_delivered(run: PortalRun, n: int) -> None:
    orders = table(Order)
    await wait_for(
        lambda: _count(run, orders, orders.c.status == OrderStatus.DELIVERED) >= n, within=20
    )


async def mo(run: PortalRun, destination: str, text: str) -> None:
    assert run.bridge.sandbox is not None
    before = _count(run, table(Inbound))
    await send_mo(
        run.settings.sandbox.host,
        run.bridge.sandbox.port,
        PHONE,
        destination,
        text,
        run.settings.sandbox.inbox,
    )
    await wait_for(lambda: _count(run, table(Inbound)) > before, within=20)


async def traffic(run: PortalRun) -> None:
    """demo sends 2 SMS (GSM-7), acme 1 in Cyrillic (UCS-2); one MO SMS to acme's number,
    one to the demo's sender number."""
    let_acme_send(run)
    await send(run, "demo@example.com", [PHONE, "+491701234568"])
    await send(run, "anna@acme.example", ["+491701230000"], body="Привет")
    await until_delivered(run, 3)
    await mo(run, ACME_NUMBER, "for acme")
    await mo(run, DEMO_NUMBER, "for demo")


def cards(html: str) -> dict[str, str]:
    return dict(
        re.findall(r'<div class="label muted">([^<]+)</div><div class="value">([^<]+)</div>', html)
    )


def bars(html: str, series: str) -> dict[str, int]:
    """The bars of one series in the SMS-per-day chart: day → value."""
    return {
        m["day"]: int(m["value"])
        for m in re.finditer(
            rf'<rect class="bar {series}" data-category="(?P<day>[0-9-]+)" '
            r'data-value="(?P<value>\d+)"',
            html,
        )
    }


def points(html: str) -> dict[str, int]:
    return {
        m[1]: int(m[2])
        for m in re.finditer(
            r'<circle class="point inbound" data-category="([0-9-]+)" data-value="(\d+)"', html
        )
    }


async def test_each_viewer_counts_only_its_customers_sms(tmp_path: Path) -> None:
    today = utcnow().date().isoformat()
    async with portal(tmp_path) as run:
        await traffic(run)
        async with run.client() as acme, run.client() as demo, run.client() as ops:
            await login(acme, "acme-admin")
            await login(demo, "admin")
            await login(ops, "ops")

            page = (await acme.get("/portal/")).text
            c = cards(page)
            assert (c["Orders"], c["Sent"], c["Delivered"], c["Failed"]) == ("1", "1", "1", "0")
            assert c["Delivery rate"] == "100.0 %" and c["Inbound"] == "1"
            assert bars(page, "sent")[today] == 1 and bars(page, "delivered")[today] == 1
            assert len(bars(page, "sent")) == 30  # the default period: 30 days
            assert points(page)[today] == 1  # only the MO acme's number took
            assert "whose number, keyword or conversation took them" in page
            # Asking for another customer changes nothing for a customer admin.
            other = (await acme.get("/portal/", params={"customer": "demo"})).text
            assert cards(other) == c and "<select" not in other

            c = cards((await demo.get("/portal/")).text)
            assert (c["Orders"], c["Sent"], c["Delivered"], c["Inbound"]) == ("2", "2", "2", "1")

            page = (await ops.get("/portal/")).text
            c = cards(page)
            assert (c["Orders"], c["Sent"], c["Inbound"]) == ("3", "3", "2")
            assert bars(page, "sent")[today] == 3 and points(page)[today] == 2
            parts = dict(
                re.findall(
                    r'<rect class="bar parts" data-category="(\w+)" data-value="(\d+)"', page
                )
            )
            assert parts == {"gsm7": "2", "ucs2": "1"}
            page = (await ops.get("/portal/", params={"customer": "acme"})).text
            c = cards(page)
            assert (c["Orders"], c["Sent"]) == ("1", "1")
            assert "<option selected>acme</option>" in page
            r = await ops.get("/portal/", params={"customer": "nobody"})
            assert r.status_code == 404 and "no customer of that name" in r.text


async def test_the_period_is_chosen_and_checked(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        await login(web, "admin")
        r = await web.get("/portal/", params={"since": "2026-01-01", "until": "2026-01-07"})
        assert r.status_code == 200
        assert list(bars(r.text, "sent")) == [f"2026-01-0{d}" for d in range(1, 8)]
        assert "No data in this period" in r.text
        assert cards(r.text)["Delivery rate"] == "–"
        for params, sentence in (
            ({"since": "yesterday"}, "written YYYY-MM-DD"),
            ({"since": "2026-02-01", "until": "2026-01-01"}, "first day is after its last day"),
            ({"since": "2020-01-01", "until": "2026-01-01"}, "at most 366 days"),
        ):
            r = await web.get("/portal/", params=params)
            assert r.status_code == 400 and sentence in r.text, params
            assert "Traceback" not in r.text


async def test_the_charts_have_titles_and_a_table_each(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        await login(web, "admin")
        page = (await web.get("/portal/")).text
        for chart in ("chart-status", "chart-parts", "chart-inbound"):
            assert f'aria-labelledby="{chart}-title {chart}-desc"' in page
        assert page.count('<details class="chart-data">') == 3
        assert page.count("<table>") == 3
