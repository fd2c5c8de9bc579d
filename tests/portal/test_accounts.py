"""The portal accounts page over HTTP: an operator manages all, a customer admin its own admins."""

from __future__ import annotations

from pathlib import Path

from bridge.db.store import run_sync
from bridge.portal.accounts import AccountRow, find_account
from bridge.portal.status import Role
from tests.portal.harness import PASSWORD, PortalRun, hidden_fields, login, portal

NEW = "another good password"


def _account(run: PortalRun, username: str) -> AccountRow | None:
    assert run.bridge.store is not None
    return run_sync(run.bridge.store.engine, find_account, username)


def _id(run: PortalRun, username: str) -> int:
    found = _account(run, username)
    assert found is not None
    return found.id


async def _can_log_in(run: PortalRun, username: str, password: str) -> bool:
    async with run.client() as web:
        fields = hidden_fields((await web.get("/portal/login")).text)
        r = await web.post(
            "/portal/login", data={"username": username, "password": password, **fields}
        )
        return r.status_code == 303


async def test_a_customer_admin_adds_and_disables_its_own_admins(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "acme-admin")
        page = await web.get("/portal/accounts")
        assert page.status_code == 200 and "acme-admin" in page.text
        assert "<td>ops" not in page.text and "<td>admin" not in page.text
        # Whatever the form says about the customer, the new admin is acme's.
        r = await web.post(
            "/portal/accounts?customer=demo",
            data={
                "csrf": csrf,
                "username": "acme-second",
                "role": "customer_admin",
                "customer": "demo",
                "password": NEW,
                "password_again": NEW,
            },
        )
        assert r.status_code == 303 and r.headers["location"] == "/portal/accounts?done=added"
        added = _account(run, "acme-second")
        assert added is not None and added.customer == "acme"
        assert added.role is Role.CUSTOMER_ADMIN
        assert await _can_log_in(run, "acme-second", NEW)
        r = await web.post(f"/portal/accounts/{added.id}/disable", data={"csrf": csrf})
        assert r.status_code == 303
        assert not await _can_log_in(run, "acme-second", NEW)
        r = await web.post(f"/portal/accounts/{added.id}/enable", data={"csrf": csrf})
        assert r.status_code == 303 and await _can_log_in(run, "acme-second", NEW)
        r = await web.post(
            f"/portal/accounts/{added.id}/password",
            data={"csrf": csrf, "password": PASSWORD + "!", "password_again": PASSWORD + "!"},
        )
        assert r.status_code == 303 and await _can_log_in(run, "acme-second", PASSWORD + "!")


async def test_a_customer_admin_cannot_make_an_operator_or_touch_others(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "acme-admin")
        r = await web.post(
            "/portal/accounts",
            data={
                "csrf": csrf,
                "username": "evil-op",
                "role": "operator",
                "password": NEW,
                "password_again": NEW,
            },
        )
        assert r.status_code == 403 and "Only an operator can add an operator" in r.text
        assert _account(run, "evil-op") is None
        for other in ("admin", "ops"):  # demo's admin, the operator
            oid = _id(run, other)
            for path in (f"{oid}/disable", f"{oid}/enable", f"{oid}/password"):
                r = await web.post(
                    f"/portal/accounts/{path}?customer=demo",
                    data={"csrf": csrf, "password": NEW, "password_again": NEW},
                )
                assert r.status_code == 404, (other, path)
            assert await _can_log_in(run, other, PASSWORD)
        # Not its own account either (it would lock itself out).
        me = _id(run, "acme-admin")
        r = await web.post(f"/portal/accounts/{me}/disable", data={"csrf": csrf})
        assert r.status_code == 403 and "cannot disable your own account" in r.text
        account = _account(run, "acme-admin")
        assert account is not None and account.enabled


async def test_an_operator_manages_every_account(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "ops")
        page = await web.get("/portal/accounts")
        assert "<td>acme-admin" in page.text and "<td>admin" in page.text
        only_acme = await web.get("/portal/accounts", params={"customer": "acme"})
        assert "acme-admin" in only_acme.text and "<td>admin" not in only_acme.text
        r = await web.post(
            "/portal/accounts",
            data={
                "csrf": csrf,
                "username": "ops2",
                "role": "operator",
                "customer": "",
                "password": NEW,
                "password_again": NEW,
            },
        )
        assert r.status_code == 303
        ops2 = _account(run, "ops2")
        assert ops2 is not None and ops2.role is Role.OPERATOR and ops2.customer is None
        r = await web.post(f"/portal/accounts/{_id(run, 'admin')}/disable", data={"csrf": csrf})
        assert r.status_code == 303 and not await _can_log_in(run, "admin", PASSWORD)


async def test_bad_accounts_are_refused_with_a_sentence(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "ops")
        base = {"csrf": csrf, "username": "new-one", "role": "customer_admin", "customer": "acme"}
        for fields, sentence in (
            ({"password": "short", "password_again": "short"}, "at least 10 characters"),
            ({"password": NEW, "password_again": NEW + "x"}, "The two passwords differ"),
            ({"username": "acme-admin", "password": NEW, "password_again": NEW}, "exists already"),
            ({"username": "with space", "password": NEW, "password_again": NEW}, "without spaces"),
            ({"customer": "", "password": NEW, "password_again": NEW}, "needs --customer"),
            ({"customer": "nosuch", "password": NEW, "password_again": NEW}, "no customer"),
            ({"role": "king", "password": NEW, "password_again": NEW}, "Choose the role"),
            (
                {"role": "operator", "password": NEW, "password_again": NEW},
                "an operator sees every customer",
            ),
        ):
            r = await web.post("/portal/accounts", data={**base, **fields})
            assert r.status_code == 400 and sentence in r.text, (fields, r.text)
        assert _account(run, "new-one") is None
        r = await web.post(
            f"/portal/accounts/{_id(run, 'admin')}/password",
            data={"csrf": csrf, "password": "short", "password_again": "short"},
        )
        assert r.status_code == 400 and "at least 10 characters" in r.text
        assert (
            await web.post("/portal/accounts/x/disable", data={"csrf": csrf})
        ).status_code == 404


async def test_posts_without_the_csrf_token_change_nothing(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        await login(web, "ops")
        r = await web.post(
            "/portal/accounts",
            data={"username": "x-op", "role": "operator", "password": NEW, "password_again": NEW},
        )
        assert r.status_code == 403 and _account(run, "x-op") is None
        r = await web.post(f"/portal/accounts/{_id(run, 'admin')}/disable")
        assert r.status_code == 403 and await _can_log_in(run, "admin", PASSWORD)
