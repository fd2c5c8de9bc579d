"""The portal's inbound SMS page: each customer sees the SMS it took, an operator every one."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from bridge.db.store import run_sync
from bridge.inbound.listing import list_messages
from bridge.inbound.status import InboundRoute, InboundStatus
from bridge.portal.pages.inbound import ROUTES, STATUSES
from bridge.tenants.admin import DEMO_NUMBER
from tests.helpers import wait_for
from tests.portal.harness import browser, browser_login, login, portal, screenshot
from tests.portal.test_dashboard import (
    ACME_NUMBER,
    PHONE,
    let_acme_send,
    mo,
    send,
    until_delivered,
)


async def test_each_customer_admin_sees_only_the_inbound_sms_its_numbers_took(
    tmp_path: Path,
) -> None:
    async with portal(tmp_path) as run:
        let_acme_send(run)
        await send(run, "demo@example.com", [PHONE])  # the phone's answer is a reply to demo
        await until_delivered(run, 1)
        await mo(run, ACME_NUMBER, "for acme")
        await mo(run, DEMO_NUMBER, "for demo")
        store = run.bridge.store
        assert store is not None

        def routed() -> bool:
            rows = run_sync(store.engine, list_messages)
            return len(rows) == 2 and all(r.status != "received" for r in rows)

        await wait_for(routed, within=20)
        async with run.client() as acme, run.client() as demo, run.client() as ops:
            await login(acme, "acme-admin")
            await login(demo, "admin")
            await login(ops, "ops")
            page = (await acme.get("/portal/inbound")).text
            assert "for acme" in page and "for demo" not in page and "its number" in page
            # Asking for demo's rows changes nothing for acme's admin.
            other = (await acme.get("/portal/inbound", params={"customer": "demo"})).text
            assert "for acme" in other and "for demo" not in other
            page = (await demo.get("/portal/inbound")).text
            assert "for demo" in page and "for acme" not in page and "a conversation" in page
            page = (await ops.get("/portal/inbound")).text
            assert "for demo" in page and "for acme" in page
            page = (await ops.get("/portal/inbound", params={"customer": "acme"})).text
            assert "for acme" in page and "for demo" not in page
            # Filters: our number written with 00, the texter's number, a period.
            zeros = "00" + ACME_NUMBER[1:]
            page = (await ops.get("/portal/inbound", params={"to": zeros})).text
            assert "for acme" in page and "for demo" not in page
            page = (await ops.get("/portal/inbound", params={"until": "2000-01-01"})).text
            assert "No inbound SMS in this view." in page
            for bad, sentence in (
                ({"since": "yesterday"}, "enter a date as YYYY-MM-DD"),
                ({"from": "alice"}, "enter a phone number in international form"),
            ):
                r = await ops.get("/portal/inbound", params=bad)
                assert r.status_code == 400 and sentence in r.text
            r = await ops.get("/portal/inbound", params={"after": "9" * 40})
            assert r.status_code == 200  # a page mark too large is no mark


async def test_the_inbound_page_in_a_browser(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, browser() as b:
        let_acme_send(run)
        await mo(run, ACME_NUMBER, "for acme")
        page = await b.new_page()
        await browser_login(page, run.base, "acme-admin")
        await page.click("nav.side >> text=Inbound SMS")
        await page.wait_for_url(f"{run.base}/portal/inbound")
        for _ in range(50):  # routing is asynchronous: reload until the SMS shows
            if "for acme" in await page.inner_text("main"):
                break
            await asyncio.sleep(0.2)
            await page.reload()
        assert "its number" in await page.inner_text("table.inbound")
        await screenshot(page, "inbound", "inbound")


def test_every_route_and_status_has_words_for_the_page() -> None:
    # A stored word added without words for the page would show bare (`limited`,
    # `unconfigured` did), untranslatable.
    assert set(ROUTES) == set(InboundRoute)
    assert set(STATUSES) == set(InboundStatus)
    labels = [*ROUTES.items(), *STATUSES.items()]
    assert all(label and label != word for word, label in labels)


async def test_the_page_names_the_status_in_words(tmp_path: Path) -> None:
    async with portal(tmp_path) as run:
        let_acme_send(run)
        await mo(run, ACME_NUMBER, "for acme")
        store = run.bridge.store
        assert store is not None
        await wait_for(
            lambda: all(r.status != "received" for r in run_sync(store.engine, list_messages)),
            within=20,
        )
        async with run.client() as acme:
            await login(acme, "acme-admin")
            page = (await acme.get("/portal/inbound")).text
            cells = re.findall(r"<td>([^<]*)</td>\s*</tr>", page)  # the last cell of each row
            assert cells and all(c in STATUSES.values() for c in cells), cells
