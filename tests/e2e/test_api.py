"""The REST API on a running bridge: send, preview, status, cancel, stop list, keys, problems.

The bridge runs with its HTTP listener on 127.0.0.1, port 0; SMS go out to the sandbox
SMSC. Customer "demo" (the embedded default's) and customer "acme" each get an API key,
so every object route is tried across customers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx

from bridge.api.keys import add_key
from bridge.api.messages import MessageService
from bridge.api.routes import Api
from bridge.app import Bridge
from bridge.db.store import run_sync
from bridge.errors import REPLIES
from bridge.http.settings import HttpSettings
from bridge.sandbox.smsc import read_inbox
from bridge.settings import Settings
from bridge.tenants.admin import add_customer, add_user
from tests.conftest import make_settings
from tests.helpers import make_mail, running_bridge, wait_for

PHONE = "+491701234567"
PROBLEM = "application/problem+json"


@dataclass
class Api_:
    bridge: Bridge
    settings: Settings
    http: httpx.AsyncClient
    demo: dict[str, str]  # Authorization header of demo's key
    acme: dict[str, str]  # ... of acme's key (rate limit: 2 SMS per minute)
    smtp: tuple[str, int]
    sandbox: tuple[str, int]  # the sandbox SMSC (its phones send MO SMS)


@asynccontextmanager
async def api(tmp_path: Path, **overrides: Any) -> AsyncIterator[Api_]:
    overrides.setdefault("http", HttpSettings(enabled=True, listen="127.0.0.1:0"))
    settings = make_settings(tmp_path, **overrides)
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None and ep.http is not None and ep.sandbox is not None

        def setup(conn: Any) -> tuple[str, str]:
            add_customer(conn, "acme", {"default_country": "DE"})
            add_user(conn, "app@acme.example", "acme", settings={"rate_per_minute": 2})
            return add_key(conn, "demo", "app"), add_key(conn, "acme", "erp")

        demo, acme = run_sync(bridge.store.engine, setup)
        async with httpx.AsyncClient(base_url=f"http://{ep.http[0]}:{ep.http[1]}") as client:
            yield Api_(
                bridge,
                settings,
                client,
                {"Authorization": f"Bearer {demo}"},
                {"Authorization": f"Bearer {acme}"},
                ep.smtp,
                ep.sandbox,
            )


def _problem(r: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["type"] == f"urn:mailsms:problem:{kind}" and body["status"] == status
    return body


async def test_done_when_the_sms_reaches_the_phone_and_the_status_is_read(
    tmp_path: Path,
) -> None:
    async with api(tmp_path) as a:
        r = await a.http.post(
            "/api/v1/messages", json={"to": [PHONE], "text": "hi"}, headers=a.demo
        )
        assert r.status_code == 201, r.text
        [order] = r.json()["orders"]
        assert order["to"] == PHONE and order["status"] == "queued"
        assert r.headers["location"] == f"/api/v1/messages/{order['id']}"
        [sms] = await wait_for(lambda: read_inbox(a.settings.sandbox.inbox, PHONE))
        assert sms.text == "hi"

        for _ in range(100):  # the receipt comes back from the sandbox SMSC
            got = (await a.http.get(f"/api/v1/messages/{order['id']}", headers=a.demo)).json()
            if got["status"] == "delivered":
                break
            await asyncio.sleep(0.1)
        assert got["text"] == "hi" and got["sender_id"] == "+4915550000001"
        assert [p["state"] for p in got["part_states"]] == ["delivered"]
        events = [h["event"] for h in got["history"]]
        assert events[0] == "queued" and "delivered" in events


async def test_the_mail_and_the_api_make_the_same_order(tmp_path: Path) -> None:
    text = "Grüße – “quoted” text with € and a long tail " * 4
    async with api(tmp_path) as a:
        host, port = a.smtp
        async with aiosmtplib.SMTP(hostname=host, port=port) as smtp:
            await smtp.sendmail(
                "demo@example.com", [f"{PHONE}@eu.rsms.net"], make_mail(body=text, subject="")
            )
        r = await a.http.post(
            "/api/v1/messages", json={"to": [PHONE], "text": text}, headers=a.demo
        )
        assert r.status_code == 201
        listed = (await a.http.get("/api/v1/messages", headers=a.demo)).json()["messages"]
        assert len(listed) == 2
        api_order, mail_order = [
            (await a.http.get(f"/api/v1/messages/{m['id']}", headers=a.demo)).json() for m in listed
        ]
        same = ("to", "sender_id", "text", "encoding", "parts", "priority", "cost_centre")
        assert {k: api_order[k] for k in same} == {k: mail_order[k] for k in same}
        assert api_order["parts"] >= 2 and api_order["id"] == r.json()["orders"][0]["id"]


async def test_idempotency_key_makes_a_retry_safe(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        headers = {**a.demo, "Idempotency-Key": "order-4711"}
        body = {"to": [PHONE, "+491701234568"], "text": "once"}
        first = await a.http.post("/api/v1/messages", json=body, headers=headers)
        again = await a.http.post("/api/v1/messages", json=body, headers=headers)
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json() and len(first.json()["orders"]) == 2
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        listed = (await a.http.get("/api/v1/messages", headers=a.demo)).json()["messages"]
        assert len(listed) == 2  # one mail, two orders: nothing written twice
        other = await a.http.post(
            "/api/v1/messages", json={**body, "text": "different"}, headers=headers
        )
        _problem(other, 422, "idempotency_key_reused")
        # The same key of another customer is another key.
        acme = await a.http.post(
            "/api/v1/messages",
            json={"to": [PHONE], "text": "acme"},
            headers={**a.acme, "Idempotency-Key": "order-4711"},
        )
        assert acme.status_code == 201 and acme.json() != first.json()


async def test_a_key_of_one_customer_sees_nothing_of_another(tmp_path: Path) -> None:
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="minutes")
    async with api(tmp_path) as a:
        r = await a.http.post(
            "/api/v1/messages", json={"to": [PHONE], "text": "x", "send_at": later}, headers=a.demo
        )
        demo_id = r.json()["orders"][0]["id"]
        added = await a.http.post("/api/v1/stoplist", json={"msisdn": PHONE}, headers=a.demo)
        assert added.status_code == 201
        for method in ("GET", "DELETE"):
            got = await a.http.request(method, f"/api/v1/messages/{demo_id}", headers=a.acme)
            assert _problem(got, 404, "not_found")["detail"] == (
                f"message {demo_id} does not exist for this API key"
            )
        assert (await a.http.get("/api/v1/messages", headers=a.acme)).json()["messages"] == []
        assert (
            await a.http.get("/api/v1/messages", params={"recipient": PHONE}, headers=a.acme)
        ).json()["messages"] == []
        assert (await a.http.get("/api/v1/stoplist", headers=a.acme)).json()["entries"] == []
        _problem(await a.http.delete(f"/api/v1/stoplist/{PHONE}", headers=a.acme), 404, "not_found")
        # acme's stop list is its own: the number is stopped for demo only.
        sent = await a.http.post(
            "/api/v1/messages", json={"to": [PHONE], "text": "x"}, headers=a.acme
        )
        assert sent.status_code == 201
        # Still there for its owner.
        mine = await a.http.get(f"/api/v1/messages/{demo_id}", headers=a.demo)
        assert mine.status_code == 200 and mine.json()["status"] == "queued"
        assert len((await a.http.get("/api/v1/stoplist", headers=a.demo)).json()["entries"]) == 1


async def test_cancel_a_scheduled_message(tmp_path: Path) -> None:
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="minutes")
    async with api(tmp_path) as a:
        r = await a.http.post(
            "/api/v1/messages",
            json={"to": [PHONE], "text": "later", "send_at": later},
            headers=a.demo,
        )
        order_id = r.json()["orders"][0]["id"]
        got = (await a.http.get(f"/api/v1/messages/{order_id}", headers=a.demo)).json()
        assert got["status"] == "queued" and got["send_at"] is not None
        cancelled = await a.http.delete(f"/api/v1/messages/{order_id}", headers=a.demo)
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "failed"
        assert cancelled.json()["error"] == "cancelled through the REST API"
        _problem(
            await a.http.delete(f"/api/v1/messages/{order_id}", headers=a.demo),
            409,
            "not_cancellable",
        )
        _problem(await a.http.delete("/api/v1/messages/NOPE.1", headers=a.demo), 404, "not_found")


async def test_the_list_filters_and_pages(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        for n, cc in ((1, "4711"), (2, "4711"), (3, "0815")):
            r = await a.http.post(
                "/api/v1/messages",
                json={"to": [f"+49170123456{n}"], "text": f"m{n}", "cost_centre": cc},
                headers=a.demo,
            )
            assert r.status_code == 201, r.text

        async def ids(**params: Any) -> list[str]:
            r = await a.http.get("/api/v1/messages", params=params, headers=a.demo)
            assert r.status_code == 200, r.text
            return [m["to"] for m in r.json()["messages"]]

        assert await ids() == ["+491701234563", "+491701234562", "+491701234561"]
        assert await ids(cost_centre="4711") == ["+491701234562", "+491701234561"]
        assert await ids(recipient="+491701234562") == ["+491701234562"]
        assert await ids(user="demo@example.com", limit=5) != []
        assert await ids(user="other@example.com") == []
        since = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert await ids(since=since) == []
        page = (await a.http.get("/api/v1/messages", params={"limit": 2}, headers=a.demo)).json()
        assert len(page["messages"]) == 2 and page["next"] is not None
        rest = await ids(limit=2, after=page["next"])
        assert rest == ["+491701234561"]
        for bad in ({"status": "lost"}, {"limit": "0"}, {"since": "yesterday"}):
            _problem(
                await a.http.get("/api/v1/messages", params=bad, headers=a.demo), 400, "bad_request"
            )


async def test_preview_shows_parts_encoding_and_replacements_and_writes_nothing(
    tmp_path: Path,
) -> None:
    async with api(tmp_path) as a:
        r = await a.http.post(
            "/api/v1/messages/preview",
            json={"to": [PHONE], "text": "“Quoted” – " + "x" * 200},
            headers=a.demo,
        )
        assert r.status_code == 200, r.text
        p = r.json()
        assert p["encoding"] == "gsm7" and p["parts"] == 2 and len(p["part_texts"]) == 2
        assert {"from": "“", "to": '"'} in p["replaced"]
        assert p["text"].startswith('"Quoted" - ') and p["refused"] is None
        assert (await a.http.get("/api/v1/messages", headers=a.demo)).json()["messages"] == []


async def test_refusals_are_problems_with_the_smtp_texts(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        post = a.http.post
        _problem(
            await post("/api/v1/messages", json={"to": [PHONE], "text": "x"}), 401, "unauthorized"
        )
        bad_key = {"Authorization": "Bearer msk_000000000000_nope"}
        _problem(await post("/api/v1/messages", json={}, headers=bad_key), 401, "unauthorized")
        r = await post("/api/v1/messages", content=b"{not json", headers=a.demo)
        assert "not JSON" in _problem(r, 400, "bad_request")["detail"]
        r = await post("/api/v1/messages", json={"to": [PHONE]}, headers=a.demo)
        assert "'text'" in _problem(r, 400, "bad_request")["detail"]
        r = await post(
            "/api/v1/messages", json={"to": [PHONE], "text": "x", "colour": "red"}, headers=a.demo
        )
        assert "unknown field(s) colour" in _problem(r, 400, "bad_request")["detail"]

        r = await post("/api/v1/messages", json={"to": ["12"], "text": "x"}, headers=a.demo)
        body = _problem(r, 422, "bad_recipient")
        assert body["smtp"] == "550 5.1.3" and "not a mobile number" in body["detail"]

        r = await post(
            "/api/v1/messages",
            json={"to": [PHONE], "text": "x", "sender_id": "ACME"},
            headers=a.demo,
        )
        body = _problem(r, 422, "override_refused")
        assert body["detail"] == REPLIES["override_refused"].text.format(
            origin="field sender_id",
            setting="sender_id",
            allowed="priority, validity, notify, cost_centre, max_parts, send_at, flash",
        )
        r = await post(
            "/api/v1/messages",
            json={"to": [PHONE], "text": "x", "validity": "forever"},
            headers=a.demo,
        )
        assert _problem(r, 422, "bad_override")["smtp"] == "550 5.6.0"

        assert (
            await post("/api/v1/stoplist", json={"msisdn": PHONE}, headers=a.demo)
        ).status_code == 201
        r = await post("/api/v1/messages", json={"to": [PHONE], "text": "x"}, headers=a.demo)
        body = _problem(r, 422, "opted_out")
        assert body["detail"] == REPLIES["opted_out"].text.format(recipient=PHONE)
        assert (await a.http.delete(f"/api/v1/stoplist/{PHONE}", headers=a.demo)).status_code == 204
        r = await post("/api/v1/messages", json={"to": [PHONE], "text": "x"}, headers=a.demo)
        assert r.status_code == 201

        # acme's user may send 2 SMS per minute.
        r = await post(
            "/api/v1/messages", json={"to": [PHONE, "+491701234568"], "text": "x"}, headers=a.acme
        )
        assert r.status_code == 201
        r = await post("/api/v1/messages", json={"to": [PHONE], "text": "x"}, headers=a.acme)
        body = _problem(r, 429, "rate_limited")
        assert r.headers["retry-after"] == "60" and body["smtp"] == "452 4.7.1"
        assert "at most 2 SMS per minute" in body["detail"]


async def test_a_key_limited_to_networks_is_refused_elsewhere(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        assert a.bridge.store is not None
        token = run_sync(
            a.bridge.store.engine,
            lambda conn: add_key(conn, "demo", "office", networks=["192.0.2.0/24"]),
        )
        auth = {"Authorization": f"Bearer {token}"}
        r = await a.http.get("/api/v1/messages", headers=auth)
        assert "may not be used from 127.0.0.1" in _problem(r, 403, "client_not_allowed")["detail"]
        # A client naming an allowed address itself is not believed (no trusted proxy).
        r = await a.http.get("/api/v1/messages", headers={**auth, "X-Forwarded-For": "192.0.2.9"})
        assert "may not be used from 127.0.0.1" in _problem(r, 403, "client_not_allowed")["detail"]


async def test_behind_a_trusted_proxy_a_keys_networks_judge_the_forwarded_address(
    tmp_path: Path,
) -> None:
    """`[http] trusted_proxies` names the reverse proxy (here 127.0.0.1): the address it
    forwards is the client's, for the key's networks as for everything else."""
    http = HttpSettings(enabled=True, listen="127.0.0.1:0", trusted_proxies=("127.0.0.0/8",))
    async with api(tmp_path, http=http) as a:
        assert a.bridge.store is not None
        token = run_sync(
            a.bridge.store.engine,
            lambda conn: add_key(conn, "demo", "office", networks=["192.0.2.0/24"]),
        )
        auth = {"Authorization": f"Bearer {token}"}
        r = await a.http.get("/api/v1/messages", headers={**auth, "X-Forwarded-For": "192.0.2.9"})
        assert r.status_code == 200, r.text
        r = await a.http.get(
            "/api/v1/messages", headers={**auth, "X-Forwarded-For": "198.51.100.4"}
        )
        assert (
            "may not be used from 198.51.100.4" in _problem(r, 403, "client_not_allowed")["detail"]
        )


async def test_the_openapi_document_names_every_route(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        r = await a.http.get("/api/v1/openapi.json")
        assert r.status_code == 200
        doc = r.json()
        assert doc["openapi"].startswith("3.")
        assert a.bridge.store is not None
        service = MessageService(a.bridge.store, {}, ("eu.rsms.net",), 10, 0.0)
        mounted = {
            (route.path.removeprefix("/api/v1"), method.lower())  # type: ignore[attr-defined]
            for route in Api(service).routes()
            for method in route.methods - {"HEAD"}  # type: ignore[attr-defined]
        }
        documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
        assert mounted == documented
