"""The API keys page over HTTP: create (shown once), list, revoke, scoping, refusals."""

from __future__ import annotations

import re
from pathlib import Path

from bridge.api.keys import add_key, check_token, list_keys
from bridge.db.store import run_sync
from tests.portal.harness import PortalRun, login, portal


def _token(html: str) -> str:
    match = re.search(r'<output class="token" id="token">(msk_[A-Za-z0-9_-]+)</output>', html)
    assert match, html
    return match[1]


def _active(run: PortalRun, customer: str) -> list[str]:
    assert run.bridge.store is not None
    keys = run_sync(run.bridge.store.engine, list_keys, customer)
    return [k.name for k in keys if k.revoked_at is None]


async def test_a_key_is_shown_once_and_works(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "admin")
        page = await web.get("/portal/api-keys")
        assert page.status_code == 200 and "No API keys yet." in page.text
        r = await web.post(
            "/portal/api-keys",
            data={"csrf": csrf, "name": "erp-prod", "user": "demo@example.com", "networks": ""},
        )
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        token = _token(r.text)
        assert run.bridge.store is not None
        key = run_sync(run.bridge.store.engine, check_token, token)
        assert key is not None and key.customer == "demo" and key.user == "demo@example.com"
        # Listed, never shown again.
        page = await web.get("/portal/api-keys")
        assert "erp-prod" in page.text and f"msk_{key.key_id}_…" in page.text
        assert token not in page.text and token.split("_", 2)[2] not in page.text
        assert token.encode() not in (tmp_path / "bridge.db").read_bytes()
        # Revoke.
        r = await web.post(f"/portal/api-keys/{key.key_id}/revoke", data={"csrf": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/portal/api-keys?done=revoked"
        assert run_sync(run.bridge.store.engine, check_token, token) is None
        page = await web.get(r.headers["location"])
        assert "requests with it are refused" in page.text and "revoked" in page.text
        r = await web.post(f"/portal/api-keys/{key.key_id}/revoke", data={"csrf": csrf})
        assert r.status_code == 404


async def test_bad_keys_are_refused_with_the_cli_sentence(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "admin")
        ok = {"csrf": csrf, "name": "app", "user": "demo@example.com"}
        assert (await web.post("/portal/api-keys", data=ok)).status_code == 200
        for fields, sentence in (
            ({"name": ""}, "name: 1 to 100 characters"),
            ({"name": "x" * 101}, "name: 1 to 100 characters"),
            ({}, "has an API key named &#39;app&#39; already"),
            ({"name": "other", "networks": "10.0.0.0/33"}, "network &#39;10.0.0.0/33&#39;"),
            # Another customer's user cannot be named.
            ({"name": "other", "user": "anna@acme.example"}, "no user &#39;anna@acme.example&#39;"),
        ):
            r = await web.post("/portal/api-keys", data={**ok, **fields})
            assert r.status_code == 400 and sentence in r.text, (fields, r.text)
            assert 'class="token"' not in r.text  # no key made, none shown
        assert _active(run, "demo") == ["app"]
        assert _active(run, "acme") == []


async def test_another_customers_keys_are_out_of_reach(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        assert run.bridge.store is not None
        run_sync(run.bridge.store.engine, lambda conn: add_key(conn, "demo", "demo-app"))
        demo_key = run_sync(run.bridge.store.engine, list_keys, "demo")[0]
        csrf = await login(web, "acme-admin")
        page = await web.get("/portal/api-keys", params={"customer": "demo"})
        assert "demo-app" not in page.text and demo_key.key_id not in page.text
        r = await web.post(
            f"/portal/api-keys/{demo_key.key_id}/revoke?customer=demo", data={"csrf": csrf}
        )
        assert r.status_code == 404 and "There is no active API key" in r.text
        assert _active(run, "demo") == ["demo-app"]
        # A key created by acme-admin with ?customer=demo is acme's, for acme's user.
        r = await web.post(
            "/portal/api-keys?customer=demo",
            data={"csrf": csrf, "name": "mine", "user": "anna@acme.example"},
        )
        assert r.status_code == 200
        assert _active(run, "acme") == ["mine"] and _active(run, "demo") == ["demo-app"]
        # The operator sees both and revokes demo's.
        async with run.client() as ops:
            ops_csrf = await login(ops, "ops")
            page = await ops.get("/portal/api-keys")
            assert "demo-app" in page.text and "mine" in page.text
            assert "Choose a customer to create a key." in page.text
            r = await ops.post("/portal/api-keys", data={"csrf": ops_csrf, "name": "x"})
            assert r.status_code == 400 and "Choose a customer first" in r.text
            r = await ops.post(
                f"/portal/api-keys/{demo_key.key_id}/revoke", data={"csrf": ops_csrf}
            )
            assert r.status_code == 303
        assert _active(run, "demo") == []


async def test_posts_without_the_csrf_token_change_nothing(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        await login(web, "admin")
        r = await web.post("/portal/api-keys", data={"name": "x", "user": "demo@example.com"})
        assert r.status_code == 403 and 'class="token"' not in r.text
        assert _active(run, "demo") == []
        assert run.bridge.store is not None
        run_sync(run.bridge.store.engine, lambda conn: add_key(conn, "demo", "keep"))
        key = run_sync(run.bridge.store.engine, list_keys, "demo")[0]
        assert (await web.post(f"/portal/api-keys/{key.key_id}/revoke")).status_code == 403
        assert _active(run, "demo") == ["keep"]
