"""A cross-site request forgery in Debian's Chromium: a page of another origin on this
machine posts a form to the portal while the admin is logged in. The browser sends the
session cookie (same site: 127.0.0.1, another port), so what refuses the request is the
portal's own check (the CSRF token and the Origin), and nothing changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bridge.db.store import run_sync
from bridge.inbound.actions_store import list_stops
from tests.portal.harness import browser, browser_login, portal, screenshot


@asynccontextmanager
async def evil_site(html: str) -> AsyncIterator[str]:
    """An HTTP server on another port of 127.0.0.1 serving one page: its URL."""
    body = html.encode()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_form_posted_from_another_site_changes_nothing(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, browser() as b:
        page = await b.new_page()
        await browser_login(page, run.base, "admin")
        for token in ("", "a guessed token"):
            form = (
                f'<form id="f" method="post" action="{run.base}/portal/stoplist">'
                '<input name="msisdn" value="+491709990000">'
                f'<input name="csrf" value="{token}"></form>'
                '<script>document.getElementById("f").submit()</script>'
            )
            async with evil_site(form) as url:
                async with page.expect_response(
                    lambda r: r.url.endswith("/portal/stoplist")
                ) as got:
                    await page.goto(url)
                response = await got.value
                assert response.status == 403  # logged in (a 401 otherwise), but refused
                await page.wait_for_load_state()
                assert "did not come from this portal" in await page.inner_text("main")
        await screenshot(page, "csrf", "refused")
        assert run.bridge.store is not None
        assert run_sync(run.bridge.store.engine, list_stops, None) == []
        # The same admin, on the portal's own page, can add the number.
        await page.goto(f"{run.base}/portal/stoplist")
        await page.fill("input[name=msisdn]", "+491709990000")
        await page.click("form.stack button[type=submit]")
        await page.wait_for_load_state()
        assert [r.msisdn for r in run_sync(run.bridge.store.engine, list_stops, None)] == [
            "+491709990000"
        ]
