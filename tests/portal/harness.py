"""A running bridge with its portal, portal accounts of two customers, and a real browser.

The bridge runs the embedded default (demo customer "demo") plus customer "acme", with
its HTTP listener on 127.0.0.1 port 0. Accounts: "ops" (operator), "admin" (the demo
customer's administrator, the embedded default's demo login) and "acme-admin". The
browser is Debian's Chromium driven by Playwright (`scripts/test-deps.sh` installs it;
nothing is downloaded); each test's screenshots go to var/screenshots/<test>/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page, async_playwright

from bridge.app import Bridge
from bridge.db.store import run_sync
from bridge.http.settings import HttpSettings
from bridge.portal.accounts import add_account
from bridge.portal.settings import PortalSettings
from bridge.portal.status import Role
from bridge.settings import Settings
from bridge.tenants.admin import add_customer, add_user
from tests.conftest import make_settings
from tests.helpers import running_bridge

PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("MAILSMS_SCREENSHOTS", ROOT / "var" / "screenshots"))


@dataclass
class PortalRun:
    bridge: Bridge
    settings: Settings
    base: str  # http://127.0.0.1:<port>
    smtp: tuple[str, int]

    def client(self, source: str | None = None) -> httpx.AsyncClient:
        """A client; `source`: the loopback address it connects from (e.g. 127.0.0.2)."""
        transport = None if source is None else httpx.AsyncHTTPTransport(local_address=source)
        return httpx.AsyncClient(base_url=self.base, follow_redirects=False, transport=transport)


@asynccontextmanager
async def portal(tmp_path: Path, **overrides: Any) -> AsyncIterator[PortalRun]:
    """The running bridge; `overrides` replace its settings' sections (`http`'s `enabled`
    and `listen` are always the test's)."""
    overrides.setdefault("portal", PortalSettings(demo_password=PASSWORD))
    http = overrides.pop("http", HttpSettings()).model_copy(
        update={"enabled": True, "listen": "127.0.0.1:0"}
    )
    settings = make_settings(tmp_path, http=http, **overrides)
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None and ep.http is not None

        def setup(conn: Any) -> None:
            add_customer(conn, "acme", {"default_country": "DE"})
            add_user(conn, "anna@acme.example", "acme")
            add_account(conn, "ops", Role.OPERATOR, None, PASSWORD)
            add_account(conn, "acme-admin", Role.CUSTOMER_ADMIN, "acme", PASSWORD)

        run_sync(bridge.store.engine, setup)
        yield PortalRun(bridge, settings, f"http://{ep.http[0]}:{ep.http[1]}", ep.smtp)


_HIDDEN = re.compile(r'type="hidden" name="(?P<name>[a-z_]+)" value="(?P<value>[^"]*)"')


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden form fields of a page (login_token, next, csrf)."""
    return {m["name"]: m["value"] for m in _HIDDEN.finditer(html)}


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    """Log `client` in through the login form; the session's CSRF token."""
    form = await client.get("/portal/login")
    fields = hidden_fields(form.text)
    r = await client.post(
        "/portal/login",
        data={"username": username, "password": password, **fields},
    )
    assert r.status_code == 303, r.text
    home = await client.get("/portal/")
    assert home.status_code == 200, home.text
    return hidden_fields(home.text)["csrf"]


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is missing: `make test` installs it (scripts/test-deps.sh)"
    return found


@asynccontextmanager
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(
            executable_path=chromium_path(),
            args=["--no-sandbox"] if os.geteuid() == 0 else [],
        )
        try:
            yield b
        finally:
            await b.close()


async def browser_login(page: Page, base: str, username: str, password: str = PASSWORD) -> None:
    await page.goto(f"{base}/portal/")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/portal/")


async def screenshot(page: Page, test: str, name: str) -> None:
    folder = SCREENSHOTS / test
    folder.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
