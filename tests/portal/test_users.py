"""The users pages over HTTP: list and search, enable/disable, aliases, scoping, refusals."""

from __future__ import annotations

from pathlib import Path

from bridge.db.store import run_sync
from bridge.tenants.admin import add_user, list_aliases
from bridge.tenants.senders import find_sender
from tests.portal.harness import PortalRun, login, portal


def _sender_id(run: PortalRun, address: str) -> int:
    assert run.bridge.store is not None
    sender = run_sync(run.bridge.store.engine, find_sender, address)
    assert sender is not None
    return sender.user_id


def _enabled(run: PortalRun, address: str) -> bool:
    assert run.bridge.store is not None
    sender = run_sync(run.bridge.store.engine, find_sender, address)
    assert sender is not None
    return sender.enabled


async def test_the_list_shows_the_customers_users_and_searches(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        assert run.bridge.store is not None
        for i in range(3):
            run_sync(
                run.bridge.store.engine,
                lambda conn, i=i: add_user(
                    conn, f"sales{i}@example.com", "demo", display_name=f"Sales {i}"
                ),
            )
        await login(web, "admin")
        page = await web.get("/portal/users")
        assert page.status_code == 200
        assert "demo@example.com" in page.text and "sales2@example.com" in page.text
        assert "anna@acme.example" not in page.text
        found = await web.get("/portal/users", params={"q": "SALES 1"})
        assert "sales1@example.com" in found.text and "sales2@example.com" not in found.text
        none = await web.get("/portal/users", params={"q": "nobody"})
        assert "No user matches." in none.text
        wildcard = await web.get("/portal/users", params={"q": "%_"})
        assert "No user matches." in wildcard.text  # no LIKE wildcards from the search box
        # ?customer=acme is ignored for a customer admin.
        other = await web.get("/portal/users", params={"customer": "acme"})
        assert "anna@acme.example" not in other.text and "demo@example.com" in other.text
        # Odd paging input is read as the first page.
        assert (await web.get("/portal/users", params={"page": "-3"})).status_code == 200
        async with run.client() as ops:
            await login(ops, "ops")
            page = await ops.get("/portal/users")
            acme = await ops.get("/portal/users", params={"customer": "acme"})
        assert "anna@acme.example" in page.text and "demo@example.com" in page.text
        assert "anna@acme.example" in acme.text and "demo@example.com" not in acme.text


async def test_paging(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        assert run.bridge.store is not None

        def many(conn: object) -> None:
            for i in range(55):
                add_user(conn, f"u{i:02d}@example.com", "demo")  # type: ignore[arg-type]

        run_sync(run.bridge.store.engine, many)
        await login(web, "admin")
        first = await web.get("/portal/users")
        assert 'rel="next"' in first.text and "u48@example.com" in first.text
        assert "u49@example.com" not in first.text
        second = await web.get("/portal/users", params={"page": "2"})
        assert "u49@example.com" in second.text and 'rel="prev"' in second.text


async def test_disable_and_enable_a_user(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "admin")
        uid = _sender_id(run, "demo@example.com")
        page = await web.get(f"/portal/users/{uid}")
        assert page.status_code == 200 and "enabled: may send SMS" in page.text
        r = await web.post(f"/portal/users/{uid}/disable", data={"csrf": csrf})
        assert (
            r.status_code == 303 and r.headers["location"] == f"/portal/users/{uid}?done=disabled"
        )
        assert not _enabled(run, "demo@example.com")
        page = await web.get(r.headers["location"])
        assert "may no longer send SMS" in page.text
        r = await web.post(f"/portal/users/{uid}/enable", data={"csrf": csrf})
        assert r.status_code == 303 and _enabled(run, "demo@example.com")


async def test_aliases_are_added_and_removed_with_the_address_check(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "admin")
        uid = _sender_id(run, "demo@example.com")
        r = await web.post(
            f"/portal/users/{uid}/aliases/add",
            data={"csrf": csrf, "address": "Demo.Other@Example.com"},
        )
        assert r.status_code == 303, r.text
        # The alias is a sender of this user now, as the intake sees it.
        assert _sender_id(run, "demo.other@example.com") == uid
        page = await web.get(f"/portal/users/{uid}")
        assert "demo.other@example.com" in page.text
        found = await web.get("/portal/users", params={"q": "demo.other"})  # found by its alias
        assert f'href="/portal/users/{uid}"' in found.text
        for address, sentence in (
            ("not an address", "An email address must have an @-sign."),
            ("demo.other@example.com", "is an alias already"),
            ("anna@acme.example", "is a user&#39;s own address"),
            ("", "Enter the address"),
        ):
            r = await web.post(
                f"/portal/users/{uid}/aliases/add", data={"csrf": csrf, "address": address}
            )
            assert r.status_code == 400 and sentence in r.text, (address, r.text)
        r = await web.post(
            f"/portal/users/{uid}/aliases/remove",
            data={"csrf": csrf, "address": "nobody@example.com"},
        )
        assert r.status_code == 400 and "is not an alias of this user" in r.text
        r = await web.post(
            f"/portal/users/{uid}/aliases/remove",
            data={"csrf": csrf, "address": "demo.other@example.com"},
        )
        assert r.status_code == 303
        assert run.bridge.store is not None
        assert run_sync(run.bridge.store.engine, list_aliases, uid) == []


async def test_a_directory_users_aliases_stay_with_the_directory(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        assert run.bridge.store is not None
        uid = run_sync(
            run.bridge.store.engine,
            lambda conn: add_user(conn, "dir@example.com", "demo", origin="dirsync"),
        )
        csrf = await login(web, "admin")
        r = await web.post(
            f"/portal/users/{uid}/aliases/add", data={"csrf": csrf, "address": "x@example.com"}
        )
        assert r.status_code == 400 and "comes from the directory" in r.text
        assert run_sync(run.bridge.store.engine, list_aliases, uid) == []


async def test_another_customers_user_is_not_found(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "acme-admin")
        demo = _sender_id(run, "demo@example.com")
        anna = _sender_id(run, "anna@acme.example")
        assert (await web.get(f"/portal/users/{anna}")).status_code == 200
        for path in (f"/portal/users/{demo}", "/portal/users/999999", "/portal/users/abc"):
            r = await web.get(path)
            assert r.status_code == 404 and "There is no such user." in r.text, path
        for action in ("disable", "enable"):
            r = await web.post(f"/portal/users/{demo}/{action}?customer=demo", data={"csrf": csrf})
            assert r.status_code == 404
        assert _enabled(run, "demo@example.com")
        r = await web.post(
            f"/portal/users/{demo}/aliases/add", data={"csrf": csrf, "address": "x@acme.example"}
        )
        assert r.status_code == 404
        assert run.bridge.store is not None
        assert run_sync(run.bridge.store.engine, list_aliases, demo) == []


async def test_posts_without_the_csrf_token_change_nothing(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        await login(web, "admin")
        uid = _sender_id(run, "demo@example.com")
        assert (await web.post(f"/portal/users/{uid}/disable")).status_code == 403
        r = await web.post(f"/portal/users/{uid}/aliases/add", data={"address": "a@example.com"})
        assert r.status_code == 403
        assert _enabled(run, "demo@example.com")
        assert run.bridge.store is not None
        assert run_sync(run.bridge.store.engine, list_aliases, uid) == []
