"""The direct notice builder writes exactly the bytes `EmailMessage` would, or steps aside."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bridge.notices import fastmime
from bridge.notices.render import DEFAULT_TEMPLATES, Renderer
from tests.helpers import STATUS_CONTEXT

BASE: dict[str, Any] = STATUS_CONTEXT
CASES = [
    {},
    {"status": "delivered", "to_name": ""},
    {"text": "Grüße aus Köln – bis gleich 👋", "subject": "Grüße"},
    {"text": "x" * 300 + " " + "long line " * 40},
    {"text": "ü" * 200},
    {"in_reply_to": "", "cost_centre": ""},
    {"reply_to": "+491701234501@eu.rsms.net", "references": "<a@b.example>  <orig@client.example>"},
    {"to_name": "Doe, John"},  # needs quoting: the EmailMessage path
    {"to_name": "Jürgen"},  # needs encoding: the EmailMessage path
    {"subject": "a very long subject " * 6},  # folded: the EmailMessage path
]


def _normalise(data: bytes) -> bytes:
    boundary = re.search(rb'boundary="([^"]+)"', data)
    assert boundary is not None
    data = data.replace(boundary.group(1), b"BOUNDARY")
    data = re.sub(rb"(?m)^Date: .*$", b"Date: X", data)
    return re.sub(rb"(?m)^Message-ID: .*$", b"Message-ID: X", data)


@pytest.mark.parametrize("extra", CASES)
def test_direct_bytes_equal_email_message_bytes(extra: dict[str, Any]) -> None:
    renderer = Renderer(
        DEFAULT_TEMPLATES, from_address="bridge@example.com", from_name="SMS Bridge", hostname="h.t"
    )
    context = {**BASE, **extra}
    slow = renderer.render("status", "alice@example.com", context).as_bytes()
    fast = renderer.render_bytes("status", "alice@example.com", context)
    assert _normalise(fast) == _normalise(slow)


def test_headers_that_need_encoding_or_folding_are_not_built_directly() -> None:
    assert fastmime.alternative([("Subject", "Grüße")], "a", "b") is None
    assert fastmime.alternative([("Subject", "x" * 80)], "a", "b") is None
    assert fastmime.alternative([("Subject", "=?utf-8?q?x?=")], "a", "b") is None
    assert fastmime.simple_address("Doe, John", "j@example.com") is None
    assert fastmime.simple_address("John Doe", "j@example.com") == "John Doe <j@example.com>"
