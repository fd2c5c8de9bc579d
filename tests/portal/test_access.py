"""The access page over HTTP: SMTP logins, client networks and TLS/AUTH, scoping, refusals."""

from __future__ import annotations

import re
from pathlib import Path

from bridge.db.store import run_sync
from bridge.intake.access_store import get_access
from bridge.tenants.logins import add_credential, find_credential, verify_password
from tests.portal.harness import PortalRun, login, portal

GOOD = "a long login password"


def _login_id(html: str, username: str) -> int:
    match = re.search(rf'<tr id="login-(\d+)">\s*<td>{re.escape(username)}</td>', html)
    assert match, html
    return int(match[1])


def _access(run: PortalRun, customer: str) -> dict[str, object]:
    assert run.bridge.store is not None
    return run_sync(run.bridge.store.engine, get_access, customer)


async def test_add_a_login_and_disable_it(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "admin")
        page = await web.get("/portal/access")
        assert page.status_code == 200 and "No logins." in page.text
        r = await web.post(
            "/portal/access/logins",
            data={"csrf": csrf, "username": "sap-prod", "password": GOOD, "password_again": GOOD},
        )
        assert r.status_code == 303 and r.headers["location"] == "/portal/access?done=login-added"
        assert run.bridge.store is not None
        stored = run_sync(run.bridge.store.engine, find_credential, "sap-prod")
        assert stored is not None and stored.customer == "demo" and stored.enabled
        assert verify_password(GOOD, stored.password_hash)
        page = await web.get(r.headers["location"])
        assert GOOD not in page.text and "stored hashed" in page.text
        login_id = _login_id(page.text, "sap-prod")
        r = await web.post(f"/portal/access/logins/{login_id}/disable", data={"csrf": csrf})
        assert r.status_code == 303
        stored = run_sync(run.bridge.store.engine, find_credential, "sap-prod")
        assert stored is not None and not stored.enabled
        r = await web.post(f"/portal/access/logins/{login_id}/enable", data={"csrf": csrf})
        stored = run_sync(run.bridge.store.engine, find_credential, "sap-prod")
        assert r.status_code == 303 and stored is not None and stored.enabled


async def test_bad_logins_are_refused_with_a_sentence(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "admin")
        assert run.bridge.store is not None
        run_sync(run.bridge.store.engine, add_credential, "taken", "acme", GOOD)
        for username, password, again, sentence in (
            ("short", "tiny-pw", "tiny-pw", "the password must have at least 10 characters"),
            ("differ", GOOD, GOOD + "x", "The two passwords differ"),
            ("with space", GOOD, GOOD, "The login name needs 1 to 128"),
            ("", GOOD, GOOD, "The login name needs 1 to 128"),
            ("taken", GOOD, GOOD, "login &#39;taken&#39; exists already"),
        ):
            r = await web.post(
                "/portal/access/logins",
                data={
                    "csrf": csrf,
                    "username": username,
                    "password": password,
                    "password_again": again,
                },
            )
            assert r.status_code == 400 and sentence in r.text, (username, r.text)
            assert password not in r.text
        assert run_sync(run.bridge.store.engine, find_credential, "short") is None


async def test_networks_and_requirements_use_the_cli_validation(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "admin")
        page = await web.get("/portal/access")
        assert "127.0.0.0/8" in page.text  # the demo's loopback networks
        r = await web.post(
            "/portal/access/rules",
            data={
                "csrf": csrf,
                "networks": "192.0.2.0/24\n2001:db8::/32, 127.0.0.0/8",
                "require_tls": "yes",
            },
        )
        assert r.status_code == 303 and r.headers["location"] == "/portal/access?done=rules"
        access = _access(run, "demo")
        assert access["networks"] == ["192.0.2.0/24", "2001:db8::/32", "127.0.0.0/8"]
        assert access["require_tls"] is True and access["require_auth"] is False
        r = await web.post(
            "/portal/access/rules",
            data={"csrf": csrf, "networks": "192.0.2.0/24 not-a-net", "require_auth": "yes"},
        )
        assert r.status_code == 400
        assert "&#39;not-a-net&#39; is not an IP network" in r.text
        assert _access(run, "demo")["require_auth"] is False  # nothing changed
        # The world without AUTH: saved, with the warning `config check` gives.
        r = await web.post("/portal/access/rules", data={"csrf": csrf, "networks": "0.0.0.0/0"})
        page = await web.get(r.headers["location"])
        assert "open to the world" in page.text
        # No networks and no login: nobody can send; said so.
        r = await web.post("/portal/access/rules", data={"csrf": csrf, "networks": ""})
        page = await web.get(r.headers["location"])
        assert "its users cannot send" in page.text


async def test_another_customers_logins_and_rules_are_out_of_reach(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        assert run.bridge.store is not None
        run_sync(run.bridge.store.engine, add_credential, "demo-login", "demo", GOOD)
        csrf = await login(web, "acme-admin")
        page = await web.get("/portal/access", params={"customer": "demo"})
        assert "demo-login" not in page.text and "127.0.0.0/8" not in page.text
        async with run.client() as ops:
            await login(ops, "ops")
            demo_id = _login_id((await ops.get("/portal/access")).text, "demo-login")
        for action in ("disable", "enable"):
            r = await web.post(
                f"/portal/access/logins/{demo_id}/{action}?customer=demo", data={"csrf": csrf}
            )
            assert r.status_code == 404 and "There is no such login." in r.text
        assert (
            await web.post("/portal/access/logins/x/disable", data={"csrf": csrf})
        ).status_code == 404
        stored = run_sync(run.bridge.store.engine, find_credential, "demo-login")
        assert stored is not None and stored.enabled
        # Rules posted with ?customer=demo change acme's, never demo's.
        r = await web.post(
            "/portal/access/rules?customer=demo",
            data={"csrf": csrf, "networks": "198.51.100.0/24"},
        )
        assert r.status_code == 303
        assert _access(run, "demo")["networks"] == ["127.0.0.0/8", "::1/128"]
        assert _access(run, "acme")["networks"] == ["198.51.100.0/24"]


async def test_an_operator_needs_a_customer_to_change_things(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "ops")
        page = await web.get("/portal/access")
        assert "Choose a customer to add a login" in page.text
        r = await web.post("/portal/access/rules", data={"csrf": csrf, "networks": "10.0.0.0/8"})
        assert r.status_code == 400 and "Choose a customer first" in r.text
        r = await web.post(
            "/portal/access/logins?customer=acme",
            data={"csrf": csrf, "username": "acme-smtp", "password": GOOD, "password_again": GOOD},
        )
        assert (
            r.status_code == 303
            and r.headers["location"] == "/portal/access?customer=acme&done=login-added"
        )
        assert run.bridge.store is not None
        stored = run_sync(run.bridge.store.engine, find_credential, "acme-smtp")
        assert stored is not None and stored.customer == "acme"


async def test_posts_without_the_csrf_token_change_nothing(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        await login(web, "admin")
        r = await web.post(
            "/portal/access/logins",
            data={"username": "x-login", "password": GOOD, "password_again": GOOD},
        )
        assert r.status_code == 403
        r = await web.post("/portal/access/rules", data={"networks": "0.0.0.0/0"})
        assert r.status_code == 403
        assert _access(run, "demo")["networks"] == ["127.0.0.0/8", "::1/128"]
        assert run.bridge.store is not None
        assert run_sync(run.bridge.store.engine, find_credential, "x-login") is None
