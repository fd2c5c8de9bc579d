"""A customer's push template, set through the REST API, shapes its status and inbound pushes.

A real HTTP receiver on 127.0.0.1 takes the pushes. demo's template (XML) renames and
reorders fields and adds a custom one, for the status push of an SMS sent through the
API and for the push of an SMS to demo's number; acme's own template changes nothing of
demo's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from bridge.db.store import run_sync
from bridge.inbound.admin import apply_numbers
from bridge.inbound.config import parse_numbers
from bridge.provision.apply import change_setting
from bridge.push.body import verify
from bridge.push.settings import PushSettings
from bridge.sandbox.phone import send_mo
from tests.e2e.test_api import _problem, api
from tests.e2e.test_inbound_push import SECRET, http_server
from tests.helpers import wait_for

PHONE = "+491701234567"
TEMPLATE: dict[str, Any] = {
    "format": "xml",
    "status": {
        "root": "orderStatus",
        "fields": [
            {"field": "order_id", "name": "id"},
            {"field": "status", "name": "state"},
            {"name": "system", "value": "erp-7"},
            {"field": "recipient", "name": "to"},
        ],
    },
    "inbound": {
        "root": "mo",
        "fields": [
            {"field": "from", "name": "msisdn"},
            {"field": "text"},
            {"name": "channel", "value": "sms"},
            {"field": "id"},
        ],
    },
}


def _numbers(port: int) -> str:
    return f"""
[[customer]]
name = "demo"
[customer.status_push]
url = "http://127.0.0.1:{port}/status"
auth = "hmac"
secret = "{SECRET}"

[[number]]
number = "+4915550000009"
customer = "demo"
[[number.actions]]
type = "push"
url = "http://127.0.0.1:{port}/sms"
"""


def _children(body: bytes) -> tuple[str, list[tuple[str, str | None]]]:
    root = ElementTree.fromstring(body)
    return root.tag, [(e.tag, e.text) for e in root]


async def test_a_customised_template_shapes_status_and_inbound_pushes(tmp_path: Path) -> None:
    push = PushSettings(allow_hosts=("127.0.0.1",), allow_http=True)
    with http_server() as server:
        async with api(tmp_path, push=push) as a:
            store = a.bridge.store
            assert store is not None
            run_sync(store.engine, apply_numbers, parse_numbers(_numbers(server.server_address[1])))
            run_sync(
                store.engine,
                change_setting,
                "user",
                "demo@example.com",
                "notify_channel",
                ["html", "push"],
            )
            assert (await a.http.get("/api/v1/push-template", headers=a.demo)).json() == {
                "template": None
            }
            # Preview first: nothing is stored.
            r = await a.http.post("/api/v1/push-template/preview", json=TEMPLATE, headers=a.demo)
            assert r.status_code == 200, r.text
            tag, fields = _children(r.json()["status"]["body"].encode())
            assert tag == "orderStatus" and [k for k, _ in fields] == [
                "id",
                "state",
                "system",
                "to",
            ]
            assert (await a.http.get("/api/v1/push-template", headers=a.demo)).json() == {
                "template": None
            }

            r = await a.http.put("/api/v1/push-template", json=TEMPLATE, headers=a.demo)
            assert r.status_code == 200, r.text
            stored = (await a.http.get("/api/v1/push-template", headers=a.demo)).json()["template"]
            assert stored["status"]["fields"] == TEMPLATE["status"]["fields"]
            other = {"status": {"fields": [{"field": "status"}]}}
            r = await a.http.put("/api/v1/push-template", json=other, headers=a.acme)
            assert r.status_code == 200  # acme's own; demo's stays

            sent = await a.http.post(
                "/api/v1/messages", json={"to": [PHONE], "text": "hi"}, headers=a.demo
            )
            order_id = sent.json()["orders"][0]["id"]
            await send_mo(a.sandbox[0], a.sandbox[1], PHONE, "+4915550000009", "Yes <3", Path("x"))

            def by_path(path: str) -> list[tuple[str, dict[str, str], bytes]]:
                return [(m, h, b) for m, p, h, b in server.requests if p == path]

            [(_, headers, status_body)] = await wait_for(lambda: by_path("/status"), within=10)
            [(_, mo_headers, mo_body)] = await wait_for(lambda: by_path("/sms"), within=10)

    assert headers["Content-Type"] == "application/xml"
    assert verify(SECRET, headers["X-Mailsms-Signature"], status_body, int(time.time()))
    assert _children(status_body) == (
        "orderStatus",
        [("id", order_id), ("state", "delivered"), ("system", "erp-7"), ("to", PHONE)],
    )
    assert mo_headers["Content-Type"] == "application/xml"
    tag, fields = _children(mo_body)
    assert tag == "mo" and fields[:3] == [("msisdn", PHONE), ("text", "Yes <3"), ("channel", "sms")]
    assert fields[3][0] == "id" and fields[3][1] is not None and fields[3][1].isdigit()


async def test_invalid_templates_are_refused_and_a_removed_one_gives_todays_body(
    tmp_path: Path,
) -> None:
    push = PushSettings(allow_hosts=("127.0.0.1",), allow_http=True)
    with http_server() as server:
        async with api(tmp_path, push=push) as a:
            store = a.bridge.store
            assert store is not None
            bad: dict[str, Any] = {
                "format": "yaml",
                "status": {"fields": [{"field": "colour"}, {"name": "a b", "value": 1}]},
            }
            for method, path in (("PUT", ""), ("POST", "/preview")):
                r = await a.http.request(
                    method, f"/api/v1/push-template{path}", json=bad, headers=a.demo
                )
                body = _problem(r, 422, "invalid_push_template")
                assert len(body["errors"]) == 3
                assert "format: one of json, xml, kv" in body["detail"]
                assert any("'colour' is not a default field" in e for e in body["errors"])
            r = await a.http.put("/api/v1/push-template", content=b"{", headers=a.demo)
            _problem(r, 400, "bad_request")
            _problem(await a.http.delete("/api/v1/push-template", headers=a.demo), 404, "not_found")

            run_sync(store.engine, apply_numbers, parse_numbers(_numbers(server.server_address[1])))
            run_sync(
                store.engine,
                change_setting,
                "user",
                "demo@example.com",
                "notify_channel",
                ["html", "push"],
            )
            assert (
                await a.http.put("/api/v1/push-template", json=TEMPLATE, headers=a.demo)
            ).status_code == 200
            r = await a.http.delete("/api/v1/push-template", headers=a.demo)
            assert r.status_code == 204
            await a.http.post(
                "/api/v1/messages", json={"to": [PHONE], "text": "hi"}, headers=a.demo
            )
            await wait_for(lambda: server.requests, within=10)
    data = json.loads(server.requests[0][3])  # today's body again
    assert data["type"] == "order_status" and data["status"] == "delivered"
