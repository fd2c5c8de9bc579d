"""GET /api/v1/inbound on a running bridge: a customer sees the SMS its numbers took, no other.

MO SMS come from the sandbox SMSC's phones: one to demo's own number, three to a number
demo and acme share by keyword (demo's keyword, acme's keyword, and one that matches
nobody). Each customer's key lists only its own rows; the unmatched one shows to nobody.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bridge.db.store import run_sync
from bridge.inbound.admin import apply_numbers
from bridge.inbound.config import parse_numbers
from bridge.inbound.listing import list_messages
from bridge.sandbox.phone import send_mo
from tests.e2e.test_api import _problem, api
from tests.helpers import wait_for

NUMBERS = """
[[number]]
number = "+4915550000009"
customer = "demo"
actions = [{type = "sms2mail", mode = "static", to = ["demo@example.com"]}]

[[number]]
number = "+4915550000005"
customer = "demo"
sharing = "keyword"
[[number.keyword]]
keyword = "PIZZA"
actions = [{type = "sms2mail", mode = "static", to = ["demo@example.com"]}]

[[number]]
number = "+4915550000005"
customer = "acme"
sharing = "keyword"
[[number.keyword]]
keyword = "TAXI"
actions = [{type = "sms2mail", mode = "static", to = ["app@acme.example"]}]
"""
ALICE, BOB = "+491701234567", "+491709876543"


async def test_each_key_lists_only_the_inbound_sms_its_customer_took(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        store, sandbox = a.bridge.store, a.sandbox
        assert store is not None
        run_sync(store.engine, apply_numbers, parse_numbers(NUMBERS))
        for source, destination, text in (
            (ALICE, "+4915550000009", "hello demo"),
            (ALICE, "+4915550000005", "PIZZA margherita"),
            (BOB, "+4915550000005", "TAXI to the station"),
            (BOB, "+4915550000005", "who is this"),
        ):
            await send_mo(sandbox[0], sandbox[1], source, destination, text, Path("x"))

        def routed() -> bool:
            rows = run_sync(store.engine, lambda conn: list_messages(conn))
            return len(rows) == 4 and all(r.status != "received" for r in rows)

        await wait_for(routed, within=10)

        async def listed(headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
            r = await a.http.get("/api/v1/inbound", params=params, headers=headers)
            assert r.status_code == 200, r.text
            items: list[dict[str, Any]] = r.json()["inbound"]
            return items

        demo = await listed(a.demo)
        assert [(i["from"], i["to"], i["text"]) for i in demo] == [
            (ALICE, "+4915550000005", "PIZZA margherita"),
            (ALICE, "+4915550000009", "hello demo"),
        ]
        assert [(i["route"], i["keyword"]) for i in demo] == [
            ("keyword", "PIZZA"),
            ("number", None),
        ]
        assert all(i["status"] == "notified" and i["received_at"] for i in demo)
        acme = await listed(a.acme)
        assert [(i["from"], i["text"], i["route"], i["keyword"]) for i in acme] == [
            (BOB, "TAXI to the station", "keyword", "TAXI")
        ]
        # The unmatched SMS on the shared number is nobody's; the filters find nothing of
        # the other customer's either.
        assert await listed(a.acme, **{"from": ALICE}) == []
        assert await listed(a.demo, **{"from": BOB}) == []
        assert [i["text"] for i in await listed(a.demo, to="4915550000009")] == ["hello demo"]
        assert [i["text"] for i in await listed(a.demo, **{"from": "00491701234567"})] == [
            "PIZZA margherita",
            "hello demo",
        ]
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert await listed(a.demo, since=later) == []
        assert len(await listed(a.demo, until=later)) == 2

        page = (await a.http.get("/api/v1/inbound", params={"limit": 1}, headers=a.demo)).json()
        assert [i["text"] for i in page["inbound"]] == ["PIZZA margherita"]
        rest = await listed(a.demo, limit=1, after=page["next"])
        assert [i["text"] for i in rest] == ["hello demo"]
        # Another customer's id as `after` is no mark: acme's page starts at its newest.
        assert [i["text"] for i in await listed(a.acme, after=str(demo[0]["id"]))] == [
            "TAXI to the station"
        ]
        for bad in ({"after": "x"}, {"limit": "501"}, {"until": "tomorrow"}):
            _problem(
                await a.http.get("/api/v1/inbound", params=bad, headers=a.demo), 400, "bad_request"
            )
