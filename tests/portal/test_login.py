"""Logging in to the portal over HTTP: sessions, CSRF, lockout, redirects, security headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from bridge.db.store import run_sync
from bridge.http.settings import HttpSettings
from bridge.portal.accounts import set_enabled
from bridge.portal.base import CSP, MAX_BODY
from bridge.portal.settings import PortalSettings
from bridge.portal.status import FREE_FAILURES
from tests.portal.harness import PASSWORD, ROOT, hidden_fields, login, portal

README = ROOT / "README.md"


async def test_a_login_opens_a_session_with_a_safe_cookie_and_headers(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        r = await web.get("/portal/")
        assert r.status_code == 303 and r.headers["location"] == "/portal/login?next=/portal/"
        form = await web.get("/portal/login")
        assert form.headers["content-security-policy"] == CSP
        assert form.headers["x-frame-options"] == "DENY"
        assert form.headers["x-content-type-options"] == "nosniff"
        fields = hidden_fields(form.text)
        r = await web.post(
            "/portal/login", data={"username": "Admin", "password": PASSWORD, **fields}
        )
        assert r.status_code == 303 and r.headers["location"] == "/portal/"
        cookie = r.headers["set-cookie"].lower()
        assert "mailsms_session=" in cookie and "httponly" in cookie
        assert "samesite=lax" in cookie and "path=/portal" in cookie
        page = await web.get("/portal/")
        assert page.status_code == 200 and "administrator of demo" in page.text
        assert page.headers["cache-control"] == "no-store"
        # The token is not in the database: only its SHA-256.
        db = (tmp_path / "bridge.db").read_bytes()
        assert web.cookies["mailsms_session"].encode() not in db


async def test_wrong_name_and_wrong_password_read_the_same(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        answers = []
        for user, password in (("nobody", PASSWORD), ("admin", "wrong password!")):
            fields = hidden_fields((await web.get("/portal/login")).text)
            r = await web.post(
                "/portal/login", data={"username": user, "password": password, **fields}
            )
            answers.append((r.status_code, "Wrong username or password" in r.text))
            assert "mailsms_session" not in web.cookies
        assert answers == [(401, True), (401, True)]


async def test_failed_logins_lock_the_account_for_a_growing_delay(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        for _ in range(FREE_FAILURES):
            fields = hidden_fields((await web.get("/portal/login")).text)
            r = await web.post(
                "/portal/login", data={"username": "admin", "password": "guess guess!", **fields}
            )
            assert r.status_code == 401
        # Locked now: even the right password is refused, with the wait.
        fields = hidden_fields((await web.get("/portal/login")).text)
        r = await web.post(
            "/portal/login", data={"username": "admin", "password": PASSWORD, **fields}
        )
        assert r.status_code == 429 and "Try again in 2 seconds" in r.text
        await asyncio.sleep(2.1)
        await login(web, "admin")  # the lock ran out; a success resets the count


async def test_password_checks_are_limited_per_second_over_every_client(tmp_path: Path) -> None:
    """Each password check costs ~50 ms of CPU on purpose (scrypt); unknown names cost the
    same (no account is revealed), so logins of names nobody has were unlimited and a
    client could spend the CPU the SMS need. Over `login_rate` a login gets 429 at once,
    without a password check, whatever the name; then logins go through again."""
    settings = PortalSettings(demo_password=PASSWORD, login_rate=1.0)  # a burst of 2
    async with portal(tmp_path, portal=settings) as run, run.client() as web:
        answers = []
        for n in range(5):
            fields = hidden_fields((await web.get("/portal/login")).text)
            r = await web.post(
                "/portal/login", data={"username": f"nobody{n}", "password": "x" * 12, **fields}
            )
            answers.append((r.status_code, "Too many logins at this moment" in r.text))
        assert answers[:2] == [(401, False)] * 2, answers
        assert (429, True) in answers[2:], answers  # a token comes back only after 1 s
        assert set(answers) <= {(401, False), (429, True)}, answers
        await asyncio.sleep(2.1)
        await login(web, "admin")


async def _fail(web: httpx.AsyncClient, name: str, **headers: str) -> httpx.Response:
    fields = hidden_fields((await web.get("/portal/login")).text)
    return await web.post(
        "/portal/login",
        data={"username": name, "password": "wrong password!", **fields},
        headers=headers,
    )


async def _try(web: httpx.AsyncClient, name: str, **headers: str) -> httpx.Response:
    fields = hidden_fields((await web.get("/portal/login")).text)
    return await web.post(
        "/portal/login", data={"username": name, "password": PASSWORD, **fields}, headers=headers
    )


def _address_locked(r: httpx.Response) -> bool:
    return (
        r.status_code == 429
        and "Too many failed logins from your address" in r.text
        and int(r.headers["retry-after"]) > 0
    )


async def test_failed_logins_from_one_address_lock_that_address_and_no_other(
    tmp_path: Path,
) -> None:
    """Password spraying: one guess each for many names never locks an account, and the
    global rate only slows everybody down together. After `login_max_failures` failures
    from one address, that address is refused (429, no password check, even the right
    one) while a client at another address logs in."""
    settings = PortalSettings(demo_password=PASSWORD, login_max_failures=3, login_rate=0)
    async with (
        portal(tmp_path, portal=settings) as run,
        run.client(source="127.0.0.2") as sprayer,
        run.client() as colleague,
    ):
        for name in ("nobody", "ops", "acme-admin"):
            assert (await _fail(sprayer, name)).status_code == 401
        assert _address_locked(await _try(sprayer, "admin"))
        await login(colleague, "admin")  # another address: not locked
        await login(colleague, "ops")  # one failure for the name: no account lock


async def test_a_login_whose_failures_cannot_be_counted_now_is_refused_for_now(
    tmp_path: Path,
) -> None:
    """The counts of failed logins out of reach (their lock held, or no room for a new
    client): no password is checked, the page says to try again in a minute (503,
    Retry-After), not that the address is locked; then the same login succeeds."""
    async with portal(tmp_path) as run, run.client() as web:
        assert run.bridge.portal is not None
        table = run.bridge.portal._guard.table
        table.wait = 0.2
        assert table.lock.acquire()
        try:
            busy = await _try(web, "admin")
        finally:
            table.lock.release()
        assert busy.status_code == 503, busy.status_code
        assert "Logins cannot be checked at the moment" in busy.text
        assert busy.headers["retry-after"] == "60"
        assert not _address_locked(busy)
        await login(web, "admin")


async def test_a_forged_x_forwarded_for_is_not_believed_from_a_client(tmp_path: Path) -> None:
    """Without `[http] trusted_proxies` the header is the client's own words: sending
    another address with every attempt does not spread the failures."""
    settings = PortalSettings(demo_password=PASSWORD, login_max_failures=3, login_rate=0)
    async with portal(tmp_path, portal=settings) as run, run.client() as web:
        for n in range(3):
            r = await _fail(web, f"nobody{n}", **{"X-Forwarded-For": f"203.0.113.{n + 1}"})
            assert r.status_code == 401
        assert _address_locked(await _try(web, "admin", **{"X-Forwarded-For": "203.0.113.99"}))


async def test_behind_a_trusted_proxy_the_forwarded_address_is_judged(tmp_path: Path) -> None:
    """The proxy (here 127.0.0.1) is named in `[http] trusted_proxies`: the address it
    forwards is counted, the rightmost one it does not trust (a client's own forged
    entry further left changes nothing)."""
    settings = PortalSettings(demo_password=PASSWORD, login_max_failures=3, login_rate=0)
    http = HttpSettings(trusted_proxies=("127.0.0.1",))
    async with portal(tmp_path, portal=settings, http=http) as run, run.client() as proxy:
        for name in ("nobody", "nobody2", "nobody3"):
            r = await _fail(proxy, name, **{"X-Forwarded-For": "203.0.113.7"})
            assert r.status_code == 401
        forged = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
        assert _address_locked(await _try(proxy, "admin", **forged))
        r = await _try(proxy, "admin", **{"X-Forwarded-For": "203.0.113.8"})
        assert r.status_code == 303  # another client behind the same proxy


async def test_the_login_form_needs_its_own_token(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        r = await web.post("/portal/login", data={"username": "admin", "password": PASSWORD})
        assert r.status_code == 403 and "expired" in r.text
        assert "mailsms_session" not in web.cookies


async def test_state_changes_need_the_csrf_token_and_the_same_origin(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "admin")
        r = await web.post("/portal/logout")
        assert r.status_code == 403 and "did not come from this portal" in r.text
        r = await web.post("/portal/logout", data={"csrf": "x" + csrf[1:]})
        assert r.status_code == 403
        r = await web.post(
            "/portal/logout", data={"csrf": csrf}, headers={"origin": "http://evil.example"}
        )
        assert r.status_code == 403
        assert (await web.get("/portal/")).status_code == 200  # still logged in
        r = await web.post("/portal/logout", data={"csrf": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/portal/login"
        # The session is gone on the server, not only the cookie in this client.
        web.cookies.set("mailsms_session", "replayed", path="/portal")
        assert (await web.get("/portal/")).status_code == 303


async def test_after_login_only_portal_paths_are_followed(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        for target, expected in (
            ("//evil.example/portal/", "/portal/"),
            ("https://evil.example/portal/", "/portal/"),
            ("/portal/report?status=failed", "/portal/report?status=failed"),
            ("/api/v1/messages", "/portal/"),
        ):
            web.cookies.clear()
            form = await web.get("/portal/login", params={"next": target})
            fields = hidden_fields(form.text)
            r = await web.post(
                "/portal/login", data={"username": "admin", "password": PASSWORD, **fields}
            )
            assert r.headers["location"] == expected, target


async def test_disabling_an_account_ends_its_sessions(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        await login(web, "acme-admin")
        assert run.bridge.store is not None
        run_sync(run.bridge.store.engine, set_enabled, "acme-admin", False)
        assert (await web.get("/portal/")).status_code == 303
        fields = hidden_fields((await web.get("/portal/login")).text)
        r = await web.post(
            "/portal/login", data={"username": "acme-admin", "password": PASSWORD, **fields}
        )
        assert r.status_code == 401


async def test_an_idle_session_ends(tmp_path: Path) -> None:
    settings = PortalSettings(demo_password=PASSWORD, session_idle=1.0)
    async with portal(tmp_path, portal=settings) as run, run.client() as web:
        await login(web, "admin")
        await asyncio.sleep(1.2)
        assert (await web.get("/portal/")).status_code == 303


async def test_static_files_are_served_and_nothing_else(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        css = await web.get("/portal/static/portal.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        for name in ("..%2Fbase.html", "base.html", "%2E%2E%2F%2E%2E%2Fexample.toml"):
            assert (await web.get(f"/portal/static/{name}")).status_code == 404


async def test_the_readmes_demo_login_works_on_the_embedded_default(tmp_path: Path) -> None:
    readme = README.read_text(encoding="utf-8")
    password = PortalSettings().demo_password
    assert f"log in as **`admin`** with the password **`{password}`**" in readme
    async with portal(tmp_path, portal=PortalSettings()) as run, run.client() as web:
        await login(web, "admin", password)
        assert "administrator of demo" in (await web.get("/portal/")).text


async def test_ended_sessions_are_deleted_at_the_next_login(tmp_path: Path) -> None:
    settings = PortalSettings(demo_password=PASSWORD, session_idle=1.0)
    async with portal(tmp_path, portal=settings) as run, run.client() as web:
        await login(web, "admin")
        await asyncio.sleep(1.2)
        async with run.client() as other:
            await login(other, "ops")
        assert run.bridge.store is not None
        rows = run_sync(
            run.bridge.store.engine,
            lambda c: c.exec_driver_sql("SELECT count(*) FROM portal_session").scalar(),
        )
        assert rows == 1  # the idle one of admin is gone, ops' own is there


async def test_a_form_larger_than_the_portal_takes_is_refused_before_it_is_read(
    tmp_path: Path,
) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "admin")
        big = b"x" * (MAX_BODY + 1)
        r = await web.post(
            "/portal/preview",
            content=b"csrf=" + csrf.encode() + b"&text=" + big,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 413 and "larger than 25 MB" in r.text

        async def chunks() -> AsyncIterator[bytes]:
            yield b"csrf=" + csrf.encode()

        r = await web.post(
            "/portal/logout",
            content=chunks(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 413 and "Content-Length" in r.text
        assert (await web.get("/portal/")).status_code == 200  # still logged in
        r = await web.post("/portal/login", content=big)
        assert r.status_code == 413 and "larger than 25 MB" in r.text
