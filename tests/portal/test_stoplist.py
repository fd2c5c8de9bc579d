"""The stop-list page over HTTP: search, add, remove, CSV export, scoping and CSRF."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from bridge.db.clock import utcnow
from bridge.db.store import run_sync
from bridge.inbound.actions_store import StopRow, add_stop, list_stops
from bridge.inbound.admin import apply_numbers, customer_id
from bridge.inbound.config import parse_numbers
from bridge.spreadsheet import safe_cell as csv_cell
from bridge.tenants.admin import add_customer
from tests.portal.harness import PortalRun, login, portal

NUMBERS = """
[[number]]
number = "+4915550000009"
customer = "demo"
"""


def _engine(run: PortalRun) -> Any:
    assert run.bridge.store is not None
    return run.bridge.store.engine


def _ids(run: PortalRun) -> tuple[int, int]:
    demo = run_sync(_engine(run), customer_id, "demo")
    acme = run_sync(_engine(run), customer_id, "acme")
    assert demo is not None and acme is not None
    return demo, acme


def _stops(run: PortalRun, cid: int | None) -> list[tuple[str, str]]:
    rows: list[StopRow] = run_sync(_engine(run), list_stops, cid)
    return [(r.msisdn, r.service) for r in rows]


def _seed(run: PortalRun) -> tuple[int, int]:
    demo, acme = _ids(run)
    now = utcnow()
    run_sync(_engine(run), add_stop, demo, "+491701234567", "", now, "sms")
    run_sync(_engine(run), add_stop, demo, "=HYPERLINK(1)", "", now, "sms")  # a named sender
    run_sync(_engine(run), add_stop, acme, "+491709999999", "", now, "sms")
    run_sync(_engine(run), add_stop, 0, "+491708888888", "", now, "sms")  # every customer
    return demo, acme


async def test_add_search_and_remove_numbers(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        run_sync(_engine(run), apply_numbers, parse_numbers(NUMBERS))
        demo, _ = _seed(run)
        csrf = await login(web, "admin")
        page = await web.get("/portal/stoplist")
        assert page.status_code == 200 and "+491701234567" in page.text
        assert "+491709999999" not in page.text and "+491708888888" not in page.text
        assert '<option value="+4915550000009">' in page.text  # its inbound number

        # any spelling, national with the customer's country (DE): one entry, E.164
        r = await web.post("/portal/stoplist", data={"csrf": csrf, "msisdn": "0170 555-5555"})
        assert r.status_code == 303 and r.headers["location"] == "/portal/stoplist?done=added"
        assert "mail to it is refused" in (await web.get(r.headers["location"])).text
        r = await web.post("/portal/stoplist", data={"csrf": csrf, "msisdn": "00491705555555"})
        assert r.headers["location"] == "/portal/stoplist?done=already"
        r = await web.post(
            "/portal/stoplist",
            data={"csrf": csrf, "msisdn": "+491706666666", "service": "+4915550000009"},
        )
        assert r.status_code == 303
        stops = _stops(run, demo)
        assert ("+491705555555", "") in stops and ("+491706666666", "+4915550000009") in stops

        found = await web.get("/portal/stoplist", params={"q": "555 5555"})
        assert "+491705555555" in found.text and "+491701234567" not in found.text

        r = await web.post(
            "/portal/stoplist/remove", data={"csrf": csrf, "msisdn": "+491705555555", "service": ""}
        )
        assert r.status_code == 303 and r.headers["location"] == "/portal/stoplist?done=removed"
        r = await web.post(
            "/portal/stoplist/remove", data={"csrf": csrf, "msisdn": "=HYPERLINK(1)", "service": ""}
        )
        assert r.status_code == 303  # an entry that is no number is removed as stored
        assert ("+491705555555", "") not in _stops(run, demo)
        assert ("=HYPERLINK(1)", "") not in _stops(run, demo)


async def test_bad_numbers_get_a_page_with_a_sentence(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        demo, _ = _seed(run)
        csrf = await login(web, "admin")
        before = _stops(run, demo)
        for data, status, sentence in (
            ({"msisdn": "call me"}, 400, "is not a phone number"),
            ({"msisdn": ""}, 400, "is not a phone number"),
            ({"msisdn": "+491701111111", "service": "+4915550000001"}, 400, "inbound numbers"),
        ):
            r = await web.post("/portal/stoplist", data={"csrf": csrf, **data})
            assert r.status_code == status and sentence in r.text, data
        r = await web.post("/portal/stoplist/remove", data={"csrf": csrf, "msisdn": "+491700000"})
        assert r.status_code == 404 and "not on your stop list" in r.text
        assert _stops(run, demo) == before
        assert (await web.get("/portal/stoplist?page=-3&q=0170")).status_code == 200
        r = await web.get("/portal/stoplist?page=-3&q=%00")  # a NUL: no filter can hold it
        assert r.status_code == 400 and "q contains a character that cannot be used" in r.text
        assert (await web.get(f"/portal/stoplist?page={'9' * 30}")).status_code == 200


async def test_a_customer_admin_cannot_touch_another_customers_entries(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        demo, acme = _seed(run)
        csrf = await login(web, "acme-admin")
        page = await web.get("/portal/stoplist?customer=demo")  # the choice is ignored
        assert "+491709999999" in page.text and "+491701234567" not in page.text
        for data in (
            {"msisdn": "+491701234567"},
            {"msisdn": "+491701234567", "service": ""},
            {"msisdn": "+491708888888"},  # the every-customer entry
        ):
            r = await web.post("/portal/stoplist/remove?customer=demo", data={"csrf": csrf, **data})
            assert r.status_code == 404, data
        assert ("+491701234567", "") in _stops(run, demo)
        assert ("+491708888888", "") in _stops(run, 0)
        # an entry acme adds is acme's, whatever the query says
        r = await web.post(
            "/portal/stoplist?customer=demo", data={"csrf": csrf, "msisdn": "+491707777777"}
        )
        assert r.status_code == 303
        assert ("+491707777777", "") in _stops(run, acme)
        assert ("+491707777777", "") not in _stops(run, demo)

        export = await web.get("/portal/stoplist/export?customer=demo")
        assert export.status_code == 200
        rows = list(csv.reader(io.StringIO(export.text)))
        assert rows[0] == ["msisdn", "service", "origin", "created_at"]
        assert sorted(r[0] for r in rows[1:]) == ["+491707777777", "+491709999999"]


async def test_the_export_is_a_formula_safe_csv_download(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        _seed(run)
        await login(web, "admin")
        r = await web.get("/portal/stoplist/export")
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        assert r.headers["content-disposition"].startswith('attachment; filename="stoplist-demo-')
        rows = list(csv.reader(io.StringIO(r.text)))
        assert [(row[0], row[2]) for row in rows[1:]] == [
            ("+491701234567", "sms"),
            ("'=HYPERLINK(1)", "sms"),
        ]
        searched = await web.get("/portal/stoplist/export?q=0123")
        assert [row[0] for row in csv.reader(io.StringIO(searched.text))][1:] == ["+491701234567"]

        await login(web, "ops")  # every customer, with the customer column
        rows = list(csv.reader(io.StringIO((await web.get("/portal/stoplist/export")).text)))
        assert rows[0][0] == "customer"
        assert sorted((row[0], row[1]) for row in rows[1:]) == [
            ("*", "+491708888888"),
            ("acme", "+491709999999"),
            ("demo", "'=HYPERLINK(1)"),
            ("demo", "+491701234567"),
        ]


def test_cells_that_a_spreadsheet_would_run_are_quoted() -> None:
    assert csv_cell("+491701234567") == "+491701234567"  # an E.164 number stays a number
    for bad in ("=1+1", "+1+cmd|' /C calc'!A0", "-2", "@SUM(A1)", "\tx", "\r=1", "+49 170"):
        assert csv_cell(bad) == "'" + bad
    assert csv_cell("sms") == "sms" and csv_cell("") == ""


async def test_state_changes_need_the_csrf_token(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        demo, _ = _seed(run)
        await login(web, "admin")
        before = _stops(run, demo)
        for path, data in (
            ("/portal/stoplist", {"msisdn": "+491707777777"}),
            ("/portal/stoplist/remove", {"msisdn": "+491701234567"}),
        ):
            r = await web.post(path, data=data)
            assert r.status_code == 403 and "did not come from this portal" in r.text, path
        assert _stops(run, demo) == before


async def test_an_operator_picks_the_customer_to_change(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        _, acme = _seed(run)
        csrf = await login(web, "ops")
        page = await web.get("/portal/stoplist")
        assert "+491701234567" in page.text and "+491709999999" in page.text
        assert "every customer" in page.text
        r = await web.post("/portal/stoplist", data={"csrf": csrf, "msisdn": "+491707777777"})
        assert r.status_code == 400 and "Choose a customer first" in r.text
        r = await web.post(
            "/portal/stoplist?customer=acme", data={"csrf": csrf, "msisdn": "+491707777777"}
        )
        assert r.headers["location"] == "/portal/stoplist?customer=acme&done=added"
        assert ("+491707777777", "") in _stops(run, acme)
        assert (await web.get("/portal/stoplist?customer=nobody")).status_code == 404
        # a national number is read with the chosen customer's country
        uk = run_sync(_engine(run), add_customer, "uk", {"default_country": "GB"})
        r = await web.post(
            "/portal/stoplist?customer=uk", data={"csrf": csrf, "msisdn": "07911 123456"}
        )
        assert r.status_code == 303 and _stops(run, uk) == [("+447911123456", "")]
