"""Logging in to the portal over HTTP: sessions, CSRF, lockout, redirects, security headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from bridge.db.store import run_sync
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
