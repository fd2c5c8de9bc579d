"""The settings page over HTTP: the cascade with sources, edits per level, scoping, refusals."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, insert, select, update

from bridge.db.core import table
from bridge.db.store import run_sync
from bridge.tenants.senders import find_sender
from bridge.tenants.tables import Customer, Profile, User
from tests.portal.harness import PortalRun, login, portal


def _row(html: str, name: str) -> str:
    match = re.search(rf'<tr id="setting-{name}".*?</tr>', html, re.S)
    assert match, f"no row for {name}"
    return match[0]


def _effective(html: str, name: str) -> tuple[str, str]:
    row = _row(html, name)
    value = re.search(r'<td class="value">(.*?)</td>', row, re.S)
    source = re.search(r'<td class="source source-(\w+)">', row)
    assert value and source
    return value[1].strip(), source[1]


def _user_settings(run: PortalRun, address: str) -> dict[str, Any]:
    assert run.bridge.store is not None
    sender = run_sync(run.bridge.store.engine, find_sender, address)
    assert sender is not None
    return sender.user_settings


def _user_id(run: PortalRun, address: str) -> int:
    assert run.bridge.store is not None
    sender = run_sync(run.bridge.store.engine, find_sender, address)
    assert sender is not None
    return sender.user_id


async def _set(
    web: httpx.AsyncClient, csrf: str, url: str = "/portal/settings", **fields: str
) -> httpx.Response:
    return await web.post(url, data={"csrf": csrf, "action": "set", **fields})


async def test_the_cascade_shows_each_value_and_where_it_comes_from(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        await login(web, "admin")
        uid = _user_id(run, "demo@example.com")
        page = await web.get("/portal/settings", params={"user": uid})
        assert page.status_code == 200, page.text
        # As `mailsms settings show demo@example.com`: notify from the user, the sender
        # ID from the customer, the encoding from the defaults.
        assert _effective(page.text, "notify") == ("all", "user")
        assert _effective(page.text, "sender_id") == ("+4915550000001", "customer")
        assert _effective(page.text, "encoding") == ("auto", "default")
        # The same user found by address.
        by_address = await web.get("/portal/settings", params={"address": "DEMO@example.com"})
        assert _effective(by_address.text, "notify") == ("all", "user")
        # The customer level: the user's own value does not show there.
        customer = await web.get("/portal/settings")
        assert _effective(customer.text, "notify") == ("failures", "default")
        assert _effective(customer.text, "default_country") == ("DE", "customer")


async def test_a_value_is_set_and_removed_per_level(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "admin")
        uid = _user_id(run, "demo@example.com")
        r = await _set(web, csrf, user=str(uid), key="sender_id", value="Sales")
        assert (
            r.status_code == 303
            and r.headers["location"] == f"/portal/settings?user={uid}&done=set"
        )
        assert _user_settings(run, "demo@example.com")["sender_id"] == "Sales"
        page = await web.get(r.headers["location"])
        assert "The setting is saved" in page.text
        assert _effective(page.text, "sender_id") == ("Sales", "user")
        # A list, typed as on the command line.
        r = await _set(web, csrf, key="cleaning", value="quotes, signature")
        assert r.status_code == 303
        page = await web.get("/portal/settings")
        assert _effective(page.text, "cleaning") == ("quotes, signature", "customer")
        # Unset: the level above applies again.
        r = await web.post(
            "/portal/settings",
            data={"csrf": csrf, "action": "unset", "user": str(uid), "key": "sender_id"},
        )
        assert r.status_code == 303
        assert "sender_id" not in _user_settings(run, "demo@example.com")
        page = await web.get("/portal/settings", params={"user": uid})
        assert _effective(page.text, "sender_id") == ("+4915550000001", "customer")


async def test_bad_values_are_refused_with_the_cli_sentence(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "admin")
        uid = _user_id(run, "demo@example.com")
        for fields, sentence in (
            ({"key": "sender_id", "value": "Hello World!"}, "is not a valid sender ID"),
            ({"key": "max_parts", "value": "999"}, "max_parts: expected an integer from 1 to 255"),
            ({"key": "cleaning", "value": "quotes,nonsense"}, "cleaning: unknown values"),
            ({"key": "no_such", "value": "1"}, "unknown setting &#39;no_such&#39;"),
            ({"key": "quiet_hours", "value": "25:00-08:00"}, "quiet_hours: expected"),
            ({"key": "subject_separator", "value": "\\x"}, "has a broken escape"),
            ({"key": "max_parts", "value": "9" * 5000}, "expected an integer from 1 to 255"),
            # Customer-only settings cannot be set for a user (check_setting's rule).
            (
                {"key": "report_recipients", "value": "a@b.example"},
                "can only be set for a customer",
            ),
        ):
            r = await _set(web, csrf, user=str(uid), **fields)
            assert r.status_code == 400, (fields, r.text)
            assert sentence in r.text, (fields, r.text)
            assert 'role="alert"' in r.text
        assert _user_settings(run, "demo@example.com") == {"notify": "all"}
        r = await web.post("/portal/settings", data={"csrf": csrf, "action": "x", "key": "notify"})
        assert r.status_code == 400 and "Choose to set or to remove" in r.text
        r = await _set(web, csrf, profile="nosuch", key="notify", value="all")
        assert r.status_code == 404


async def test_operator_limits_are_for_operators_only(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "admin")
        for key, value in (("rate_per_day", "100000"), ("price_per_part", "0.001 EUR")):
            r = await _set(web, csrf, key=key, value=value)
            assert r.status_code == 403 and "ask your provider" in r.text
        page = await web.get("/portal/settings")
        assert 'name="key" value="rate_per_day"' not in page.text
        async with run.client() as ops:
            ops_csrf = await login(ops, "ops")
            r = await _set(
                ops, ops_csrf, url="/portal/settings?customer=demo", key="rate_per_day", value="500"
            )
            assert r.status_code == 303, r.text
            assert r.headers["location"] == "/portal/settings?customer=demo&done=set"
        page = await web.get("/portal/settings")
        assert _effective(page.text, "rate_per_day") == ("500", "customer")


async def test_an_operator_chooses_the_customer(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "ops")
        page = await web.get("/portal/settings")
        assert page.status_code == 200 and "Choose a customer" in page.text
        r = await _set(web, csrf, key="notify", value="all")
        assert r.status_code == 400 and "Choose a customer first" in r.text
        page = await web.get("/portal/settings", params={"customer": "acme"})
        assert _effective(page.text, "default_country") == ("DE", "customer")
        assert (await web.get("/portal/settings", params={"customer": "nosuch"})).status_code == 404
        # The operator edits acme's user through acme's page.
        uid = _user_id(run, "anna@acme.example")
        r = await _set(
            web,
            csrf,
            url="/portal/settings?customer=acme",
            user=str(uid),
            key="notify",
            value="none",
        )
        assert r.status_code == 303
        assert _user_settings(run, "anna@acme.example") == {"notify": "none"}
        # ... but not through demo's: the user is not demo's.
        r = await _set(
            web,
            csrf,
            url="/portal/settings?customer=demo",
            user=str(uid),
            key="notify",
            value="all",
        )
        assert r.status_code == 404
        assert _user_settings(run, "anna@acme.example") == {"notify": "none"}


async def test_a_customer_admin_cannot_read_or_change_another_customers_settings(
    tmp_path: Path,
) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "acme-admin")
        demo_uid = _user_id(run, "demo@example.com")
        # ?customer=demo is ignored: acme's own page.
        page = await web.get("/portal/settings", params={"customer": "demo"})
        assert page.status_code == 200 and "Settings of customer acme" in page.text
        assert "+4915550000001" not in page.text
        for params in ({"user": demo_uid}, {"address": "demo@example.com"}, {"user": "x1"}):
            r = await web.get("/portal/settings", params=params)
            assert r.status_code == 404, params
        r = await _set(
            web,
            csrf,
            url="/portal/settings?customer=demo",
            user=str(demo_uid),
            key="sender_id",
            value="Hijack",
        )
        assert r.status_code == 404
        assert "sender_id" not in _user_settings(run, "demo@example.com")
        # A customer-level change by acme-admin with ?customer=demo lands on acme.
        r = await _set(
            web, csrf, url="/portal/settings?customer=demo", key="sender_id", value="Acme"
        )
        assert r.status_code == 303
        assert run.bridge.store is not None
        demo = run_sync(run.bridge.store.engine, find_sender, "demo@example.com")
        acme = run_sync(run.bridge.store.engine, find_sender, "anna@acme.example")
        assert demo is not None and acme is not None
        assert demo.customer_settings["sender_id"] == "+4915550000001"
        assert acme.customer_settings["sender_id"] == "Acme"


async def test_a_post_without_the_csrf_token_changes_nothing(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        await login(web, "admin")
        uid = _user_id(run, "demo@example.com")
        r = await web.post(
            "/portal/settings",
            data={"action": "set", "user": str(uid), "key": "sender_id", "value": "Nope"},
        )
        assert r.status_code == 403
        assert "sender_id" not in _user_settings(run, "demo@example.com")
        web.cookies.clear()
        assert (await web.get("/portal/settings")).status_code == 303


async def test_odd_input_on_every_route_is_a_page_with_a_sentence(tmp_path: Path) -> None:
    """Missing, repeated, over-long or strange fields: a 4xx page, never a 500."""
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "admin")
        uid = _user_id(run, "demo@example.com")
        odd: list[dict[str, Any]] = [
            {},
            {"key": "sender_id"},
            {"key": "\x00", "value": "\x00", "action": "set"},
            {"key": ["notify", "flash"], "value": ["a", "b"], "action": "set"},
            {"user": "99999999999999999999", "key": "notify", "value": "all", "action": "set"},
            {"profile": "../x", "key": "notify", "action": "unset"},
            {"key": "validity", "value": "1e999", "action": "set"},
            {"key": "send_at", "value": "9999-12-31T23:59:59-23:00", "action": "set"},
            {"address": "x" * 5000, "username": "\u202e" * 10, "password": "p" * 5000},
            {"name": "\x00", "networks": "::/200", "user": "x" * 300},
        ]
        for path in (
            "/portal/settings",
            f"/portal/users/{uid}/aliases/add",
            f"/portal/users/{uid}/aliases/remove",
            "/portal/access/logins",
            "/portal/access/rules",
            "/portal/api-keys",
            "/portal/accounts",
            "/portal/accounts/1/password",
        ):
            for fields in odd:
                r = await web.post(path, data={"csrf": csrf, **fields})
                assert r.status_code < 500, (path, fields, r.text)
                if r.status_code >= 400:
                    assert 'role="alert"' in r.text, (path, fields)
        for path in (
            "/portal/settings?user=-1",
            "/portal/settings?profile=%00",
            "/portal/settings?address=%00",
            "/portal/users?page=99999999999&q=%25%25_",
            "/portal/users/-1",
            "/portal/users/" + "9" * 40,
        ):
            r = await web.get(path)
            assert r.status_code < 500, (path, r.text)


async def test_a_profile_level_sits_between_customer_and_user(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        assert run.bridge.store is not None

        def with_profile(conn: Connection) -> None:
            profile, user = table(Profile), table(User)
            cid = conn.execute(select(table(Customer).c.id).where(table(Customer).c.name == "demo"))
            pid = conn.execute(
                insert(profile).values(customer_id=cid.scalar_one(), name="sales", settings={})
            ).inserted_primary_key
            assert pid is not None
            conn.execute(
                update(user).where(user.c.address == "demo@example.com").values(profile_id=pid[0])
            )

        run_sync(run.bridge.store.engine, with_profile)
        csrf = await login(web, "admin")
        page = await web.get("/portal/settings")
        assert 'href="/portal/settings?profile=sales"' in page.text
        r = await _set(
            web,
            csrf,
            url="/portal/settings?profile=sales",
            profile="sales",
            key="encoding",
            value="ucs2",
        )
        assert (
            r.status_code == 303
            and r.headers["location"] == "/portal/settings?profile=sales&done=set"
        )
        profile_page = await web.get(r.headers["location"])
        assert "Settings of profile sales" in profile_page.text
        assert _effective(profile_page.text, "encoding") == ("ucs2", "profile")
        user_page = await web.get(
            "/portal/settings", params={"user": _user_id(run, "demo@example.com")}
        )
        assert "Profile: sales." in user_page.text
        assert _effective(user_page.text, "encoding") == ("ucs2", "profile")
        r = await _set(web, csrf, profile="sales", key="mail_overrides", value="priority")
        assert (
            r.status_code == 400 and "can only be set for a customer, not for a profile" in r.text
        )
        # acme's admin cannot reach demo's profile.
        async with run.client() as acme:
            acme_csrf = await login(acme, "acme-admin")
            assert (
                await acme.get("/portal/settings", params={"profile": "sales"})
            ).status_code == 404
            r = await _set(acme, acme_csrf, profile="sales", key="encoding", value="gsm7")
            assert r.status_code == 404
        profile_page = await web.get("/portal/settings", params={"profile": "sales"})
        assert _effective(profile_page.text, "encoding") == ("ucs2", "profile")
