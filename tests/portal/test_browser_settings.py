"""Settings, users, access, API keys and accounts in Debian's Chromium, against a running bridge.

The issue's own case: a customer admin changes a user's sender ID in the portal and the
next mail's SMS (real SMTP to the bridge, the sandbox SMSC's inbox) carries it. And an
API key made in the portal sends through the REST API until it is revoked there.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import aiosmtplib
import httpx

from bridge.intake.sender_cache import SENDER_TTL
from bridge.sandbox.phone import SandboxSms
from bridge.sandbox.smsc import read_inbox
from tests.helpers import make_mail, wait_for
from tests.portal.harness import PortalRun, browser, browser_login, portal, screenshot

PHONE = "+491701234567"
OTHER_PHONE = "+491701234568"


async def _mail(run: PortalRun, body: str, phone: str = PHONE) -> SandboxSms:
    """Send one mail as demo@example.com to `phone`; the SMS the sandbox phone got for it."""
    host, port = run.smtp
    mail = make_mail(body=body, subject="", message_id=f"<{uuid.uuid4().hex}@client.example>")
    async with aiosmtplib.SMTP(hostname=host, port=port) as smtp:
        await smtp.sendmail("demo@example.com", [f"{phone}@eu.rsms.net"], mail)
    inbox = run.settings.sandbox.inbox
    found = await wait_for(
        lambda: [s for s in read_inbox(inbox, phone) if s.text == body], within=10.0
    )
    sms: SandboxSms = found[0]
    return sms


async def test_a_sender_id_changed_in_the_portal_is_on_the_next_sms(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, browser() as b:
        # (To another phone: a mail to a number the user is texting with keeps that
        # conversation's sender number, by design.)
        before = await _mail(run, "before the change", OTHER_PHONE)
        assert before.source == "+4915550000001"  # the demo customer's sender ID
        sent_at = time.monotonic()

        page = await b.new_page()
        await browser_login(page, run.base, "admin")
        await page.click("nav.side a:text('Users')")
        await page.wait_for_url(f"{run.base}/portal/users")
        await screenshot(page, "settings", "users")
        await page.click("a:text('demo@example.com')")
        await screenshot(page, "settings", "user")
        await page.click("a:text('Settings of this user')")
        row = page.locator("#setting-sender_id")
        assert "customer" in await row.locator("td.source").inner_text()
        await screenshot(page, "settings", "settings-user")

        # A refusal first: the CLI's sentence on the page, nothing stored.
        await row.locator("input[name=value]").fill("Not Valid!")
        await row.locator("button[value=set]").click()
        assert "is not a valid sender ID" in await page.inner_text("p.error")
        refused = page.locator("#setting-sender_id input[name=value]")
        assert await refused.input_value() == "Not Valid!"  # kept, to be corrected
        await screenshot(page, "settings", "settings-refused")

        row = page.locator("#setting-sender_id")
        await row.locator("input[name=value]").fill("DemoShop")
        await row.locator("button[value=set]").click()
        await page.wait_for_url("**/portal/settings?user=*&done=set")
        assert "The setting is saved" in await page.inner_text("p.notice")
        row = page.locator("#setting-sender_id")
        assert await row.locator("td.value").inner_text() == "DemoShop"
        assert await row.locator("td.source").inner_text() == "user"
        await screenshot(page, "settings", "settings-saved")

        # The intake keeps a known sender for SENDER_TTL seconds; past that, the next
        # mail is sent with the new sender ID.
        await asyncio.sleep(max(0.0, SENDER_TTL + 0.2 - (time.monotonic() - sent_at)))
        after = await _mail(run, "after the change")
        assert after.source == "DemoShop"

        # The customer level and the operator's view of it.
        await page.click("nav.levels a:text('Customer demo')")
        await screenshot(page, "settings", "settings-customer")


async def test_an_api_key_made_in_the_portal_sends_until_revoked(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, browser() as b:
        page = await b.new_page()
        await browser_login(page, run.base, "admin")
        await page.goto(f"{run.base}/portal/api-keys")
        await page.fill("input[name=name]", "erp-prod")
        await page.select_option("select[name=user]", "demo@example.com")
        await page.click("button:text('Create key')")
        token = (await page.inner_text("output.token")).strip()
        assert token.startswith("msk_")
        await screenshot(page, "settings", "api-key-created")

        async with httpx.AsyncClient(base_url=run.base) as api:
            auth = {"Authorization": f"Bearer {token}"}
            r = await api.post(
                "/api/v1/messages", json={"to": [PHONE], "text": "by key"}, headers=auth
            )
            assert r.status_code == 201, r.text
            [sms] = await wait_for(
                lambda: [
                    s for s in read_inbox(run.settings.sandbox.inbox, PHONE) if s.text == "by key"
                ]
            )
            assert sms.source == "+4915550000001"

            await page.goto(f"{run.base}/portal/api-keys")
            assert token not in await page.content()
            await screenshot(page, "settings", "api-keys")
            await page.click("table.api-keys button:text('Revoke')")
            await page.wait_for_url(f"{run.base}/portal/api-keys?done=revoked")
            assert "requests with it are refused" in await page.inner_text("p.notice")
            await screenshot(page, "settings", "api-keys-revoked")

            r = await api.post(
                "/api/v1/messages", json={"to": [PHONE], "text": "again"}, headers=auth
            )
            assert r.status_code == 401


async def test_access_and_accounts_pages_in_a_browser(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, browser() as b:
        page = await b.new_page()
        await browser_login(page, run.base, "admin")
        await page.goto(f"{run.base}/portal/access")
        await page.fill("input[name=username]", "sap-prod")
        await page.fill("input[name=password]", "a long login password")
        await page.fill("input[name=password_again]", "a long login password")
        await page.click("button:text('Add login')")
        await page.wait_for_url(f"{run.base}/portal/access?done=login-added")
        assert "sap-prod" in await page.inner_text("table.logins")
        await screenshot(page, "settings", "access")

        # The other customer's admin sees neither the login nor the demo's pages.
        other = await b.new_page()
        await browser_login(other, run.base, "acme-admin")
        await other.goto(f"{run.base}/portal/access?customer=demo")
        assert "sap-prod" not in await other.content()
        await other.goto(f"{run.base}/portal/accounts")
        await screenshot(other, "settings", "accounts")
        assert "acme-admin" in await other.inner_text("table.accounts")
        assert await other.locator("select[name=role]").count() == 0  # no operator to make

        ops = await b.new_page()
        await browser_login(ops, run.base, "ops")
        await ops.goto(f"{run.base}/portal/accounts")
        await screenshot(ops, "settings", "accounts-operator")
        assert "acme-admin" in await ops.inner_text("table.accounts")
