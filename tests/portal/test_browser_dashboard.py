"""The dashboard, the report archive and the preview in Debian's Chromium.

Mail sent over SMTP shows up as today's bar in the dashboard chart; the archived
month opens and downloads as CSV; a text with “smart quotes” and € previews with its
encoding and replaced characters. The pages load under the portal's CSP with no
violation and no failed request. Screenshots: var/screenshots/dashboard/.
"""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

from playwright.async_api import ConsoleMessage, Response

from bridge.db.clock import utcnow
from tests.portal.harness import browser, browser_login, portal, screenshot
from tests.portal.test_archive import archive_this_month
from tests.portal.test_dashboard import PHONE, send, until_delivered


async def test_dashboard_archive_and_preview_in_a_browser(tmp_path: Path) -> None:
    today = utcnow().date().isoformat()
    async with portal(tmp_path) as run, browser() as b:
        await send(run, "demo@example.com", [PHONE, "+491701234568"])
        await until_delivered(run, 2)
        report_id, month = archive_this_month(run, "demo")
        page = await b.new_page()
        problems: list[str] = []

        def console(msg: ConsoleMessage) -> None:
            if "Content Security Policy" in msg.text:
                problems.append(msg.text)

        def answered(response: Response) -> None:
            if response.status >= 400 and not response.url.endswith("/favicon.ico"):
                problems.append(f"{response.status} {response.url}")

        page.on("console", console)
        page.on("response", answered)
        await browser_login(page, run.base, "admin")

        # The dashboard: today's bar of sent SMS, drawn to its height, with its number.
        chart = page.locator("svg#chart-status")
        await chart.wait_for(state="visible")
        assert await chart.get_attribute("role") == "img"
        assert await chart.locator("title").first.text_content() == "SMS per day"
        bar = chart.locator(f'rect.bar.sent[data-category="{today}"]')
        assert await bar.get_attribute("data-value") == "2"
        box = await bar.bounding_box()
        assert box is not None and box["height"] > 50 and box["width"] > 1
        delivered = chart.locator(f'rect.bar.delivered[data-category="{today}"]')
        assert await delivered.get_attribute("data-value") == "2"
        yesterday_bar = chart.locator("rect.bar.sent").nth(28)
        assert (await yesterday_bar.bounding_box() or {"height": 1})["height"] == 0
        cards = await page.inner_text("section.cards")
        assert "Sent\n2" in cards and "Delivery rate\n100.0 %" in cards
        await page.click("figure.dash-chart details summary")  # the table under the chart
        assert await page.locator("details.chart-data table").first.is_visible()
        await screenshot(page, "dashboard", "dashboard")

        # The archive: the month, its report, its CSV.
        await page.click("nav.side >> text=Report archive")
        await page.wait_for_url(f"{run.base}/portal/archive")
        await screenshot(page, "dashboard", "archive")
        await page.click(f"a[href='/portal/archive/{report_id}']")
        await page.wait_for_url(f"{run.base}/portal/archive/{report_id}")
        assert f"SMS report for demo, {month}" in await page.inner_text("h1")
        await screenshot(page, "dashboard", "archive-report")
        async with page.expect_download() as info:
            await page.click("text=Download as CSV")
        download = await info.value
        assert download.suggested_filename == f"sms-report-demo-{month}.csv"
        saved = tmp_path / "report.csv"
        await download.save_as(saved)
        text = await asyncio.to_thread(saved.read_text, encoding="utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [(r["user"], r["sent"]) for r in rows] == [("demo@example.com", "2")]

        # The preview: encoding and replacements of a text with smart quotes and €.
        await page.click("nav.side >> text=Preview")
        await page.wait_for_url(f"{run.base}/portal/preview")
        await page.fill("textarea[name=text]", "“Smart quotes” cost 5 €")
        await page.click("form.preview button[type=submit]")
        await page.wait_for_selector("section.preview-result")
        assert await page.inner_text("dd.encoding") == "GSM-7, 24 septets"
        assert (await page.inner_text("dd.parts")).startswith("1 ")
        replaced = await page.inner_text("table.replaced tbody")
        assert replaced.split() == ["“", '"', "”", '"']
        assert '"Smart quotes" cost 5 €' in await page.inner_text("ol.sms-parts")
        await screenshot(page, "dashboard", "preview")
        assert problems == []
