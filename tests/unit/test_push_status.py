"""Order status push bodies: every format carries the fields and escapes the values."""

from __future__ import annotations

import json
from urllib.parse import parse_qs
from xml.etree import ElementTree

from bridge.push.status import status_body

CTX = {"order_id": "A.1", "status": "failed", "recipient": "+491701234567", "error": "<&>\"'"}


def test_json_xml_and_kv_bodies() -> None:
    body, ctype = status_body("json", CTX)
    assert ctype == "application/json"
    assert json.loads(body)["error"] == "<&>\"'" and json.loads(body)["type"] == "order_status"
    body, ctype = status_body("xml", CTX)
    assert ctype == "application/xml"
    root = ElementTree.fromstring(body)
    assert root.tag == "order_status" and root.findtext("error") == "<&>\"'"
    body, ctype = status_body("kv", CTX)
    assert parse_qs(body)["error"] == ["<&>\"'"] and parse_qs(body)["status"] == ["failed"]
