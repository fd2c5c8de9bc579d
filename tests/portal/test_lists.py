"""The distribution-list pages over HTTP: lists, members, CSV import, scoping and CSRF."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from bridge.db.clock import utcnow
from bridge.db.store import run_sync
from bridge.inbound.actions_store import add_stop
from bridge.inbound.admin import customer_id
from bridge.lists.store import (
    ListInfo,
    Member,
    create_list,
    get_list,
    list_lists,
    list_members,
    put_members,
)
from tests.portal.harness import PortalRun, login, portal


def _engine(run: PortalRun) -> Any:
    assert run.bridge.store is not None
    return run.bridge.store.engine


def _make_lists(run: PortalRun) -> tuple[int, int]:
    """demo's list "team" (two members) and acme's list "crew" (one member)."""

    def setup(conn: Any) -> tuple[int, int]:
        demo = create_list(conn, "demo", "team", ["city"], "the demo team")
        put_members(
            conn,
            demo,
            [
                Member("+491701234567", "Anna", "Alt", {"city": "Berlin"}),
                Member("+491701234568", "Bernd", "Brot"),
            ],
        )
        acme = create_list(conn, "acme", "crew")
        put_members(conn, acme, [Member("+491709999999", "Carla")])
        return demo, acme

    result: tuple[int, int] = run_sync(_engine(run), setup)
    return result


def _members(run: PortalRun, customer: str, name: str) -> list[str]:
    info: ListInfo = run_sync(_engine(run), get_list, customer, name)
    return [m.msisdn for m in run_sync(_engine(run), list_members, info.id, info.customer_id)]


async def _upload(
    web: httpx.AsyncClient, csrf: str, list_id: int, content: bytes, **extra: str
) -> httpx.Response:
    return await web.post(
        f"/portal/lists/{list_id}/import",
        data={"csrf": csrf, **extra},
        files={"file": ("members.csv", content, "text/csv")},
    )


async def test_a_customer_admin_creates_a_list_and_adds_and_removes_members(
    tmp_path: Path,
) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        demo_id, _ = _make_lists(run)
        csrf = await login(web, "admin")
        page = await web.get("/portal/lists")
        assert page.status_code == 200
        assert "team" in page.text and "the demo team" in page.text
        assert "crew" not in page.text  # acme's
        assert 'href="/portal/lists"' in page.text  # in the menu now

        r = await web.post(
            "/portal/lists", data={"csrf": csrf, "name": "Sales", "fields": "city, team"}
        )
        assert r.status_code == 303
        location = r.headers["location"]
        assert re.fullmatch(r"/portal/lists/\d+\?done=created", location)
        shown = await web.get(location)
        assert "The list was created." in shown.text and "List sales" in shown.text
        info = run_sync(_engine(run), get_list, "demo", "sales")
        assert info.fields == ("city", "team")

        # a national number is read with the customer's country (DE), like the CLI
        r = await web.post(
            f"/portal/lists/{demo_id}/members",
            data={"csrf": csrf, "msisdn": "0170 1234569", "first_name": "C", "field_city": "Köln"},
        )
        assert r.status_code == 303 and r.headers["location"].endswith("?done=added")
        members = run_sync(_engine(run), list_members, demo_id, 0)
        assert next(m for m in members if m.msisdn == "+491701234569").fields == {"city": "Köln"}
        page = await web.get(f"/portal/lists/{demo_id}")
        assert "+491701234569" in page.text and "Köln" in page.text

        r = await web.post(
            f"/portal/lists/{demo_id}/remove", data={"csrf": csrf, "msisdn": "+491701234568"}
        )
        assert r.status_code == 303 and r.headers["location"].endswith("?done=removed")
        assert _members(run, "demo", "team") == ["+491701234567", "+491701234569"]


async def test_bad_input_gets_a_page_with_a_sentence(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        demo_id, _ = _make_lists(run)
        csrf = await login(web, "admin")
        for data, sentence in (
            ({"name": "no spaces please"}, "A list name starts with a letter"),
            ({"name": "team"}, "exists already"),
            ({"name": "ok", "fields": "City Name"}, "Field names start with a letter"),
        ):
            r = await web.post("/portal/lists", data={"csrf": csrf, **data})
            assert r.status_code == 400 and sentence in r.text, data
        r = await web.post(
            f"/portal/lists/{demo_id}/members", data={"csrf": csrf, "msisdn": "call me maybe"}
        )
        assert r.status_code == 400 and "is not a mobile number" in r.text
        r = await web.post(
            f"/portal/lists/{demo_id}/members", data={"csrf": csrf, "msisdn": "+4930123456"}
        )
        assert r.status_code == 400  # a landline is no member, as in the CLI
        r = await web.post(
            f"/portal/lists/{demo_id}/remove", data={"csrf": csrf, "msisdn": "+491700000000"}
        )
        assert r.status_code == 404 and "not a member of this list" in r.text
        assert (await web.get("/portal/lists/999999")).status_code == 404
        assert (await web.get(f"/portal/lists/{'9' * 30}")).status_code == 404
        assert (await web.get(f"/portal/lists/{demo_id}?page={'9' * 30}")).status_code == 200
        assert (await web.get(f"/portal/lists/{demo_id}?page=x&q=%25")).status_code == 200


async def test_a_csv_import_adds_the_good_lines_and_names_each_bad_one(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        demo_id, _ = _make_lists(run)
        csrf = await login(web, "admin")
        csv_text = (
            "\ufeffNumber,first_name,last_name,city\n"
            "+49 170 1111111,Dora,Dach,Bonn\n"
            "not a number,Emil,Eck,Ulm\n"
            "+491701234567,Anna,Neu,Berlin\n"  # already a member: updated
            "01702222222,Fritz,,Kiel,an extra cell\n"  # more cells than columns
        )
        r = await _upload(web, csrf, demo_id, csv_text.encode())
        assert r.status_code == 200, r.text
        assert "Imported: 2 added, 1 updated, 0 removed." in r.text
        assert "members.csv line 3: &#39;not a number&#39; is not a mobile number" in r.text
        assert _members(run, "demo", "team") == [
            "+491701234567",
            "+491701234568",
            "+491701111111",
            "+491702222222",
        ]

        # with "replace", a bad line changes nothing
        r = await _upload(web, csrf, demo_id, b"msisdn\n+491703333333\nnope\n", replace="yes")
        assert r.status_code == 400 and "Nothing was imported" in r.text
        assert "members.csv line 3" in r.text
        assert len(_members(run, "demo", "team")) == 4
        r = await _upload(web, csrf, demo_id, b"msisdn\n+491703333333\n", replace="yes")
        assert r.status_code == 200 and "1 added, 0 updated, 4 removed" in r.text
        assert _members(run, "demo", "team") == ["+491703333333"]

        for content, sentence in (
            (b"name,city\nAnna,Bonn\n", "no number column"),
            (b"msisdn\n", "The file has no members"),
            (b"msisdn\nnope\nnada\n", "no line of the file has a mobile number"),
            ("msisdn\n+491701234567,Müller\n".encode("latin-1"), "not UTF-8"),
            (b'msisdn,x\n+491701234567,"' + b"x" * 200_000 + b'"\n', "cannot be read"),
        ):
            r = await _upload(web, csrf, demo_id, content)
            assert r.status_code == 400 and sentence in r.text, sentence
        r = await web.post(f"/portal/lists/{demo_id}/import", data={"csrf": csrf})
        assert r.status_code == 400 and "Choose a CSV file" in r.text


async def test_a_customer_admin_cannot_reach_another_customers_lists(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        demo_id, acme_id = _make_lists(run)
        csrf = await login(web, "acme-admin")
        page = await web.get("/portal/lists?customer=demo")  # the choice is ignored
        assert "crew" in page.text and "team" not in page.text
        own = await web.get(f"/portal/lists/{acme_id}")
        assert own.status_code == 200 and "+491709999999" in own.text
        assert (await web.get(f"/portal/lists/{acme_id}/import")).status_code == 200
        for url in (
            f"/portal/lists/{demo_id}",
            f"/portal/lists/{demo_id}?customer=demo",
            f"/portal/lists/{demo_id}/import",
        ):
            r = await web.get(url)
            assert r.status_code == 404 and "+491701234567" not in r.text
        for path, data in (
            ("members", {"msisdn": "+491705555555"}),
            ("remove", {"msisdn": "+491701234567"}),
        ):
            r = await web.post(f"/portal/lists/{demo_id}/{path}", data={"csrf": csrf, **data})
            assert r.status_code == 404, path
        r = await _upload(web, csrf, demo_id, b"msisdn\n+491705555555\n", replace="yes")
        assert r.status_code == 404
        assert _members(run, "demo", "team") == ["+491701234567", "+491701234568"]
        # a list created by acme-admin is acme's, whatever the query says
        r = await web.post("/portal/lists?customer=demo", data={"csrf": csrf, "name": "news"})
        assert r.status_code == 303
        run_sync(_engine(run), get_list, "acme", "news")


async def test_state_changes_need_the_csrf_token(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        demo_id, _ = _make_lists(run)
        await login(web, "admin")
        for path, data in (
            ("/portal/lists", {"name": "sneaky"}),
            (f"/portal/lists/{demo_id}/members", {"msisdn": "+491705555555"}),
            (f"/portal/lists/{demo_id}/remove", {"msisdn": "+491701234567"}),
        ):
            r = await web.post(path, data=data)
            assert r.status_code == 403 and "did not come from this portal" in r.text, path
        r = await web.post(
            f"/portal/lists/{demo_id}/import",
            files={"file": ("m.csv", b"msisdn\n+491705555555\n", "text/csv")},
            data={"replace": "yes"},
        )
        assert r.status_code == 403
        assert _members(run, "demo", "team") == ["+491701234567", "+491701234568"]
        assert [i.name for i in run_sync(_engine(run), _lists_of, "demo")] == ["team"]


def _lists_of(conn: Any, customer: str) -> list[ListInfo]:
    return list_lists(conn, customer)


async def test_an_operator_sees_every_customer_and_creates_for_the_chosen_one(
    tmp_path: Path,
) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        demo_id, _ = _make_lists(run)
        csrf = await login(web, "ops")
        page = await web.get("/portal/lists")
        assert "team" in page.text and "crew" in page.text
        page = await web.get("/portal/lists?customer=acme")
        assert "crew" in page.text and "team" not in page.text
        assert (await web.get(f"/portal/lists/{demo_id}")).status_code == 200
        assert (await web.get(f"/portal/lists/{demo_id}?customer=acme")).status_code == 404
        r = await web.post("/portal/lists", data={"csrf": csrf, "name": "ops"})
        assert r.status_code == 400 and "Choose a customer first" in r.text
        r = await web.post("/portal/lists?customer=acme", data={"csrf": csrf, "name": "ops"})
        assert r.status_code == 303
        assert r.headers["location"].endswith("?customer=acme&done=created")
        assert [i.name for i in run_sync(_engine(run), _lists_of, "acme")] == ["crew", "ops"]


async def test_a_stopped_member_is_marked(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        demo_id, _ = _make_lists(run)
        cid = run_sync(_engine(run), customer_id, "demo")
        run_sync(_engine(run), add_stop, cid, "+491701234568", "", utcnow(), "cli")
        await login(web, "admin")
        page = await web.get(f"/portal/lists/{demo_id}")
        rows = re.findall(r"<tr>(.*?)</tr>", page.text, re.S)
        stopped = [r for r in rows if "opted out" in r]
        assert len(stopped) == 1 and "+491701234568" in stopped[0]
        found = await web.get(f"/portal/lists/{demo_id}?q=bernd")
        numbers = re.findall(r'name="msisdn" value="([^"]+)"', found.text)
        assert numbers == ["+491701234568"] and "1 member matches." in found.text
