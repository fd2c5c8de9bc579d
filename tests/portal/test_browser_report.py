"""The outbound report and held orders in Debian's Chromium: a customer admin finds last
week's failed SMS of one user, downloads them as CSV and opens one's timeline; another
customer's admin sees none of it; held orders are released with a button."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

from bridge.db.store import run_sync
from bridge.intake.access_store import set_access
from bridge.portal.pages.report import CSV_COLUMNS
from bridge.sandbox.smsc import read_inbox
from tests.helpers import wait_for
from tests.portal.harness import browser, browser_login, portal, screenshot
from tests.portal.test_report import (
    FAILING,
    backdate,
    engine_of,
    failing_sandbox,
    final,
    orders_of,
    send,
    tenants,
)


async def test_a_customer_admin_downloads_last_weeks_failed_sms_of_one_user(
    tmp_path: Path,
) -> None:
    async with portal(tmp_path, **failing_sandbox(tmp_path)) as run, browser() as b:
        tenants(run, tmp_path)
        engine = engine_of(run)
        mails = {
            # (sender, number, text): days back
            ("demo@example.com", f"{FAILING}00011", "Meeting moved to 3 pm"): 3,
            ("demo@example.com", f"{FAILING}00012", "=cmd|' /C calc'!A0"): 5,
            ("demo@example.com", f"{FAILING}00013", "Failed a month ago"): 20,
            ("demo@example.com", "+491701111021", "Delivered last week"): 2,
            ("bert@example.com", f"{FAILING}00014", "Bert's failed SMS"): 3,
            ("anna@acme.example", f"{FAILING}00015", "Anna's failed SMS"): 3,
        }
        ids = {}
        for (sender, number, text), days in mails.items():
            mail_id = await send(run, sender, [number], text)
            [ids[text]] = await final(run, mail_id)
            run_sync(engine, backdate, mail_id, days)
        wanted = [ids["Meeting moved to 3 pm"], ids["=cmd|' /C calc'!A0"]]  # newest first

        page = await b.new_page()
        await browser_login(page, run.base, "admin")
        await page.click("nav.side >> text=Outbound report")
        await page.wait_for_url(f"{run.base}/portal/report")
        assert "Orders are kept for 92 days" in await page.inner_text("p.retention")
        shown = await page.locator("table.report tbody tr").count()
        assert shown == 4  # demo's and bert's of the last 7 days, not the month-old one
        await screenshot(page, "report", "report")

        await page.fill("input[name=user]", "demo@example.com")
        await page.select_option("select[name=status]", "failed")
        await page.click("form.report-filters button[type=submit]")
        await page.wait_for_url("**/portal/report?*status=failed*")
        rows = page.locator("table.report tbody tr")
        assert [await rows.nth(i).get_attribute("data-order") for i in range(2)] == wanted
        assert await rows.count() == 2
        assert "Meeting moved to 3 pm" in await page.inner_text("table.report")
        await screenshot(page, "report", "report-filtered")

        async with page.expect_download() as info:
            await page.click("a.download")
        download = await info.value
        assert download.suggested_filename.startswith("orders-demo-")
        path = await download.path()
        text = await asyncio.to_thread(Path(path).read_text, encoding="utf-8-sig")
        got = list(csv.DictReader(io.StringIO(text)))
        assert tuple(got[0]) == CSV_COLUMNS
        assert [r["id"] for r in got] == wanted
        assert {(r["user"], r["status"]) for r in got} == {("demo@example.com", "failed")}
        assert [r["text"] for r in got] == ["Meeting moved to 3 pm", "'=cmd|' /C calc'!A0"]

        await page.click(f"tr[data-order='{wanted[0]}'] a")
        await page.wait_for_url(f"{run.base}/portal/orders/{wanted[0]}")
        timeline = await page.inner_text("ol.timeline")
        assert "queued" in timeline and "failed" in timeline
        await screenshot(page, "report", "order")

        # acme's administrator: demo's order is not found, demo's rows never show.
        other = await b.new_page()
        await browser_login(other, run.base, "acme-admin")
        answer = await other.goto(f"{run.base}/portal/orders/{wanted[0]}")
        assert answer is not None and answer.status == 404
        assert "There is no such order" in await other.inner_text("main")
        await screenshot(other, "report", "order-of-another-customer")
        await other.goto(f"{run.base}/portal/report?status=failed&user=demo%40example.com")
        assert "No orders match these filters." in await other.inner_text("main")
        await other.goto(f"{run.base}/portal/report?customer=demo")
        listed = other.locator("table.report tbody tr")
        assert [await listed.nth(i).get_attribute("data-order") for i in range(1)] == [
            ids["Anna's failed SMS"]
        ]
        assert await listed.count() == 1


async def test_held_orders_are_released_with_a_button(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, browser() as b:
        engine = engine_of(run)
        run_sync(engine, set_access, "demo", {"velocity_numbers": 2})
        numbers = [f"+491701234{n}0" for n in range(61, 64)]
        mail_id = await send(run, "demo@example.com", numbers, "held in the browser")
        held = [i for i, s in run_sync(engine, orders_of, mail_id) if s == "held"]
        assert len(held) == 3
        page = await b.new_page()
        await browser_login(page, run.base, "admin")
        await page.click("nav.side >> text=Held orders")
        await page.wait_for_url(f"{run.base}/portal/held")
        assert await page.locator("table.held tbody tr").count() == 3
        await screenshot(page, "held", "held")
        await page.check(f"tr[data-order='{held[0]}'] input[type=checkbox]")
        await page.click("button[value=release]")
        await page.wait_for_url(f"{run.base}/portal/held?done=released")
        assert "Released" in await page.inner_text("p.notice")
        assert await page.locator("table.held tbody tr").count() == 2
        await screenshot(page, "held", "held-released")
        inbox = run.settings.sandbox.inbox
        await wait_for(lambda: read_inbox(inbox, numbers[0]), within=10)
        # Retrying an order the SMS pumping check held is refused with a sentence.
        await page.check(f"tr[data-order='{held[1]}'] input[type=checkbox]")
        await page.click("button[value=retry]")
        assert "release it or refuse it" in await page.inner_text("p.error")
