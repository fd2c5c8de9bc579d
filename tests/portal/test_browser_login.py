"""The portal in Debian's Chromium: log in, see the dashboard, log out."""

from __future__ import annotations

from pathlib import Path

from tests.portal.harness import PASSWORD, browser, browser_login, portal, screenshot


async def test_log_in_and_out_in_a_browser(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, browser() as b:
        page = await b.new_page()
        await page.goto(f"{run.base}/portal/")
        await page.wait_for_url(f"{run.base}/portal/login?next=/portal/")
        await screenshot(page, "login", "login")
        await page.fill("input[name=username]", "admin")
        await page.fill("input[name=password]", "not the password")
        await page.click("button[type=submit]")
        assert "Wrong username or password" in await page.inner_text("p.error")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{run.base}/portal/")
        assert "administrator of demo" in await page.inner_text("header")
        await screenshot(page, "login", "dashboard")
        await page.click("form.logout button")
        await page.wait_for_url(f"{run.base}/portal/login")
        await browser_login(page, run.base, "ops")
        assert "operator" in await page.inner_text("header")
