"""Order status push bodies: one MT order's final status as JSON, XML or key=value.

Pure code. The fields are fixed (documented in docs/inbound.md); values are escaped for
the format, so SMS text cannot break the body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from bridge.push.body import CONTENT_TYPES

FIELDS = ("order_id", "mail_id", "status", "recipient", "sender_id", "parts", "error", "final_at")


def status_body(fmt: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """The body and content type of a status push in format `fmt` (json, xml or kv)."""
    values = {name: context.get(name, "") for name in FIELDS}
    values["cost_centre"] = context.get("cost_centre", "")
    if fmt == "xml":
        inner = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in values.items())
        body = f'<?xml version="1.0" encoding="utf-8"?><order_status>{inner}</order_status>'
    elif fmt == "kv":
        body = urlencode({"type": "order_status", **{k: str(v) for k, v in values.items()}})
    else:
        body = json.dumps({"type": "order_status", **values}, ensure_ascii=False)
    return body, CONTENT_TYPES.get(fmt, CONTENT_TYPES["json"])
