"""Store function for pushing an MT order's final status to the customer's status URL.

When an order becomes final and its policy's `notify_channel` includes "push" (and its
`notify` level covers the status), a push row is queued for the customer's
`status_push` target (set in the numbers file); the push worker delivers it like an
inbound push: guarded, signed, retried.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from bridge.notices.queue import wants_notice
from bridge.push.queue import PushFields, queue_push
from bridge.push.status import status_body

GIVE_UP_AFTER = 86_400.0  # seconds, as [push] give_up_after's default


def queue_status_push_for(conn: Connection, row: Any, now: datetime) -> int | None:
    """The same, for an order row read with FINAL_ROW."""
    policy = row.policy or {}
    if "push" not in (policy.get("notify_channel") or ()) or not row.status_push:
        return None
    if not wants_notice(str(policy.get("notify", "failures")), row.status):
        return None
    context = {
        "order_id": row.id,
        "mail_id": row.mail_id,
        "status": row.status,
        "recipient": row.recipient,
        "sender_id": row.sender_id,
        "parts": row.parts,
        "error": row.error,
        "final_at": (row.final_at or now).isoformat(),
        "cost_centre": policy.get("cost_centre", ""),
    }
    target = dict(row.status_push)
    body, content_type = status_body(str(target.get("format", "json")), context)
    fields = PushFields.status(context)  # the customer's push template, if it has one
    return queue_push(
        conn, row.customer_id, None, target, body, content_type, now, GIVE_UP_AFTER, fields
    )
