"""Distribution lists, the stop list and the numbers page in Debian's Chromium.

A number put on the stop list in the browser makes the bridge refuse a real mail to it
(and taking it off lets the next mail through); a members CSV with a bad line imports the
good lines and names the bad one; each page is screenshot.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import aiosmtplib
import pytest

from bridge.db.store import run_sync
from bridge.inbound.admin import apply_numbers
from tests.helpers import make_mail
from tests.portal.harness import PortalRun, browser, browser_login, portal, screenshot
from tests.portal.test_numbers import stored_numbers

PHONE = "+491701234567"


async def _mail(run: PortalRun, to: str) -> None:
    async with aiosmtplib.SMTP(hostname=run.smtp[0], port=run.smtp[1]) as smtp:
        await smtp.sendmail("demo@example.com", [to], make_mail(to=to, body="are you there?"))


async def test_a_number_put_on_the_stop_list_in_the_browser_refuses_mail(
    tmp_path: Path,
) -> None:
    async with portal(tmp_path) as run, browser() as b:
        to = f"{PHONE}@eu.rsms.net"
        await _mail(run, to)  # accepted before
        page = await b.new_page(accept_downloads=True)
        await browser_login(page, run.base, "admin")
        await page.click("nav.side >> text=Stop list")
        await page.wait_for_url(f"{run.base}/portal/stoplist")
        assert "The stop list is empty." in await page.inner_text("main")
        await page.fill("input[name=msisdn]", "0170 1234567")  # national: the customer's DE
        await page.get_by_role("button", name="Add to the stop list").click()
        await page.wait_for_url(f"{run.base}/portal/stoplist?done=added")
        assert "mail to it is refused" in await page.inner_text("p.notice")
        assert PHONE in await page.inner_text("table.stoplist")
        await screenshot(page, "lists", "stoplist")

        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await _mail(run, to)
        [(code, message)] = [(r.code, r.message) for r in refused.value.recipients]
        assert code == 550 and "5.7.1" in message and "opted out" in message

        async with page.expect_download() as waiting:
            await page.get_by_role("link", name="Download CSV").click()
        download = await waiting.value
        assert download.suggested_filename.startswith("stoplist-demo-")
        saved = tmp_path / "stoplist.csv"
        await download.save_as(saved)
        rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8"))))
        assert [r[0] for r in rows] == ["msisdn", PHONE]

        await page.get_by_role("button", name="Remove").click()
        await page.wait_for_url(f"{run.base}/portal/stoplist?done=removed")
        await _mail(run, to)  # accepted again


async def test_a_members_csv_with_a_bad_line_in_the_browser(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, browser() as b:
        page = await b.new_page()
        await browser_login(page, run.base, "admin")
        await page.goto(f"{run.base}/portal/lists")
        await page.fill("input[name=name]", "team")
        await page.fill("input[name=fields]", "city")
        await page.get_by_role("button", name="Create the list").click()
        await page.wait_for_url("**/portal/lists/*?done=created")
        assert "The list was created." in await page.inner_text("p.notice")
        list_url = page.url.split("?")[0]

        content = (
            "msisdn,first_name,last_name,city\n"
            "+491701111111,Anna,Alt,Berlin\n"
            "0170 12,Bernd,Brot,Bonn\n"
            "01702222222,Cem,Can,Köln\n"
        )
        await page.set_input_files(
            "input[name=file]",
            {"name": "team.csv", "mimeType": "text/csv", "buffer": content.encode()},
        )
        await page.get_by_role("button", name="Import").click()
        await page.wait_for_load_state()
        result = await page.inner_text("section.import-result")
        assert "Imported: 2 added, 0 updated, 0 removed." in result
        assert "team.csv line 3: '0170 12' is not a mobile number" in result
        table = await page.inner_text("table.members")
        assert "+491701111111" in table and "+491702222222" in table and "Köln" in table
        assert "Bernd" not in table
        await screenshot(page, "lists", "list-import")

        await page.goto(f"{run.base}/portal/lists")
        assert "team" in await page.inner_text("table.lists")
        await screenshot(page, "lists", "lists")

        # another customer's admin gets "not found" for the list's address
        other = await b.new_page()
        await browser_login(other, run.base, "acme-admin")
        answer = await other.goto(list_url)
        assert answer is not None and answer.status == 404
        assert "There is no such distribution list." in await other.inner_text("main")
        assert "+491701111111" not in await other.content()


async def test_the_numbers_page_in_the_browser(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, browser() as b:
        assert run.bridge.store is not None
        run_sync(run.bridge.store.engine, apply_numbers, stored_numbers())
        page = await b.new_page()
        await browser_login(page, run.base, "admin")
        await page.click("nav.side >> text=Numbers and keywords")
        await page.wait_for_url(f"{run.base}/portal/numbers")
        numbers = await page.inner_text("table.numbers")
        assert "+4915550000005" in numbers and "Automatic reply: Open 9-17" in numbers
        assert "PIZZA" not in numbers  # acme's keyword on the shared number
        await screenshot(page, "lists", "numbers")
