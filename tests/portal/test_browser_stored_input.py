"""What came from outside, shown on every portal page in Debian's Chromium: a mail's subject,
text and cost centre, an SMS from a phone, a user's display name from the directory, each
holding HTML and script. No page may turn any of it into markup: no element of the
payload appears in the page's DOM, no dialog opens, the CSP reports nothing, and the
text is shown as the text it is. Every page without a parameter is visited (the routes
come from the portal itself), plus the page of the order that carries it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiosmtplib
from playwright.async_api import ConsoleMessage, Dialog
from sqlalchemy import text
from starlette.routing import Route

from bridge.db.store import run_sync
from bridge.portal.web import Portal
from bridge.tenants.admin import add_user
from tests.portal.harness import browser, browser_login, portal
from tests.portal.test_dashboard import PHONE, mo, until_delivered

# `onerror` runs if the <img> is ever made; `id`s tell that an element was made at all.
PAYLOAD = "<img src=x id=pwned onerror=alert(1)><b id=bold>B</b><script>alert(2)</script>"
SHORT = "<i id=ital>x</i>"  # a cost centre is at most 70 characters


def _mail() -> bytes:
    return (
        "From: demo@example.com\r\n"
        f"To: {PHONE}@eu.rsms.net\r\n"
        f"Subject: Re: {PAYLOAD}\r\n"
        f"X-SMS-Cost-Centre: {SHORT}\r\n"
        "Message-ID: <stored-1@client.example>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"Meet at 5 {PAYLOAD}\r\n"
    ).encode()


async def test_outside_text_is_text_on_every_page(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, browser() as b:
        assert run.bridge.store is not None
        engine = run.bridge.store.engine
        run_sync(
            engine,
            lambda c: add_user(c, "eve@example.com", "demo", display_name=f"Eve {SHORT}"),
        )
        host, port = run.smtp
        async with aiosmtplib.SMTP(hostname=host, port=port) as smtp:
            errors, _ = await smtp.sendmail("demo@example.com", [f"{PHONE}@eu.rsms.net"], _mail())
            assert not errors, errors
        await until_delivered(run, 1)
        await mo(run, "+4915550000001", f"Reply {PAYLOAD}")

        def order(conn: Any) -> str:
            return str(conn.execute(text('SELECT id FROM "order"')).scalar_one())

        order_id = run_sync(engine, order)
        paths = [
            r.path
            for r in Portal(run.bridge.store, run.settings.portal, https=False).routes()
            if isinstance(r, Route)
            and "GET" in (r.methods or ())
            and "{" not in r.path
            and not re.search(r"/(static|login|logout)|\.csv$|/export|/download", r.path)
        ]
        paths.append(f"/portal/orders/{order_id}")
        assert len(paths) > 12

        page = await b.new_page()
        dialogs: list[str] = []
        console: list[str] = []

        async def on_dialog(d: Dialog) -> None:
            dialogs.append(d.message)
            await d.dismiss()

        def on_console(m: ConsoleMessage) -> None:
            if m.type == "error":
                console.append(m.text)

        page.on("dialog", on_dialog)
        page.on("console", on_console)
        shown_on = []
        for who in ("admin", "ops"):
            await page.context.clear_cookies()
            await browser_login(page, run.base, who)
            for path in paths:
                response = await page.goto(run.base + path)
                assert response is not None
                if response.status >= 400:  # a page this role may not see, an id of none
                    assert response.status in (403, 404), (who, path, response.status)
                    continue
                made = await page.evaluate(
                    "['pwned', 'bold', 'ital'].filter(i => document.getElementById(i))"
                )
                assert made == [], (who, path, made)
                body = await page.inner_text("body")
                if "<b id=bold>" in body or "<i id=ital>" in body:
                    shown_on.append(path)
        assert dialogs == [], dialogs
        assert not [c for c in console if "Content Security Policy" in c], console
        # the payload is shown, as text, where such things are listed
        assert f"/portal/orders/{order_id}" in shown_on, shown_on
        assert {"/portal/inbound", "/portal/users", "/portal/report"} <= set(shown_on), shown_on
