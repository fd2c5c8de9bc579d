"""Push request bodies and signatures: JSON (default), XML or key=value, and the HMAC header.

Bodies come from `templates/push/body.{json,xml,kv}` (customer-overridable) so the field
set can be adapted without code. The HMAC signature covers the timestamp and the exact
body bytes: `X-Mailsms-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from bridge.notices.customer_templates import Templates

CONTENT_TYPES = {
    "json": "application/json",
    "xml": "application/xml",
    "kv": "application/x-www-form-urlencoded",
}


def render_body(
    templates: Templates, fmt: str, context: Mapping[str, Any], customer: str | None
) -> tuple[str, str]:
    """The body text and its content type for format `fmt`."""
    body = templates.render(f"push/body.{fmt}", context, customer).strip()
    return body, CONTENT_TYPES[fmt]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does: recompute, compare in constant time, refuse stale timestamps."""
    fields = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)
