"""Store functions for delivery status notifications (RFC 3464): which orders get one, and when.

A client that asked with NOTIFY gets exactly the DSNs it asked for (SUCCESS,
FAILURE, DELAY; NEVER: none), whatever the profile says about HTML status mails.
Without NOTIFY, the order's policy decides: DSNs are sent when its `notify_channel`
includes "dsn", for the events its `notify` level covers. The notice context carries
everything the DSN builder needs, including the original header block (RET=HDRS,
the default) or the whole original mail (RET=FULL). A failure's Status and Diagnostic-Code
follow its cause (`dsn_status.py`): the order's stored cause, or for an order a receipt
failed, its first failed part's state and error code.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from bridge.db import prepared
from bridge.db.core import table
from bridge.mt.receipt_states import FINAL_FAILURES
from bridge.mt.status import OrderStatus
from bridge.mt.tables import Mail, Order, Part
from bridge.notices.queue import queue_notice
from bridge.notices.xtext import xtext_decode
from bridge.outcomes.dsn_status import Failure, delay_status, final_status
from bridge.outcomes.final_row import FINAL_ROW

_order = table(Order)
_mail = table(Mail)
_part = table(Part)
_RAW = select(_mail.c.raw).where(_mail.c.id == bindparam("mail_id"))  # built once

# The first part a receipt failed (its state and the network's error code), built once.
_FAILED_PART = (
    select(_part.c.state, _part.c.error_code)
    .where(_part.c.order_id == bindparam("order_id"), _part.c.state.in_(sorted(FINAL_FAILURES)))
    .order_by(_part.c.seq)
    .limit(1)
)

# Final order status -> (DSN event, Action, Status). A failure's Status follows its cause
# (`dsn_status.final_status`): None here.
_FINAL: dict[str, tuple[str, str, str | None]] = {
    OrderStatus.DELIVERED: ("SUCCESS", "delivered", "2.0.0"),
    OrderStatus.UNDELIVERABLE: ("FAILURE", "failed", None),
    OrderStatus.FAILED: ("FAILURE", "failed", None),
    OrderStatus.EXPIRED: ("FAILURE", "failed", None),
    # Sent, but no delivery report came: handed to a network that reports no delivery.
    OrderStatus.UNCONFIRMED: ("SUCCESS", "relayed", "2.0.0"),
}


def _decode_orcpt(orcpt: str | None) -> str:
    if not orcpt:
        return ""
    addr_type, _, addr = orcpt.partition(";")
    return f"{addr_type};{xtext_decode(addr)}"


def dsn_wanted(notify: str | None, policy: dict[str, Any], event: str) -> bool:
    """Does this order get a DSN for `event` (SUCCESS, FAILURE or DELAY)?"""
    if notify:
        return event in notify.upper().split(",")
    channel = policy.get("notify_channel") or ("html",)
    if "dsn" not in channel:
        return False
    level = policy.get("notify", "failures")
    return level == "all" if event == "SUCCESS" else level in ("failures", "all")


def _original(raw: bytes, ret: str | None) -> str:
    if ret != "FULL":
        end = raw.find(b"\r\n\r\n")
        raw = raw if end < 0 else raw[: end + 2]
    return base64.b64encode(raw).decode("ascii")


def _queue(
    conn: Connection, row: Any, now: datetime, event: str, action: str, status: str, diagnostic: str
) -> int | None:
    """Queue the DSN for `row` (an order row read with FINAL_ROW) if one is wanted."""
    if not _wanted(row, event):
        return None
    [(raw,)] = prepared.fetch(conn, _RAW, {"mail_id": row.mail_id})
    context = {
        "order_id": row.id,
        "mail_id": row.mail_id,
        "event": event,
        "action": action,
        "status": status,
        "diagnostic": diagnostic,
        "envid": xtext_decode(row.dsn_envid) if row.dsn_envid else "",
        "orcpt": _decode_orcpt(row.dsn_orcpt),
        "final_recipient": row.rcpt_address,
        "msisdn": row.recipient,
        "arrival_date": format_datetime(row.received_at),
        "last_attempt_date": format_datetime(now),
        "in_reply_to": row.mail_message_id,
        "subject": row.mail_subject,
        "text": row.text,
        "ret": row.dsn_ret or "HDRS",
        "original": _original(raw, row.dsn_ret),
    }
    return queue_notice(
        conn, "dsn", row.envelope_from, context, now, customer=row.customer_name, order_id=row.id
    )


def _wanted(row: Any, event: str) -> bool:
    """Does the sender of this order row (read with FINAL_ROW) want a DSN for `event`?"""
    return bool(row.envelope_from) and dsn_wanted(row.dsn_notify, row.policy or {}, event)


def final_dsn_wanted(row: Any) -> bool:
    """Does this finished order row get a success or failure DSN?"""
    return row.status in _FINAL and _wanted(row, _FINAL[row.status][0])


def queue_final_dsn_for(conn: Connection, row: Any, now: datetime) -> int | None:
    """Queue the success or failure DSN of a finished order row, if one is wanted."""
    if row.status not in _FINAL:
        return None
    event, action, status = _FINAL[row.status]
    if status is not None:
        delivered = row.status == OrderStatus.DELIVERED
        detail = "delivered to the handset" if delivered else row.error or row.status
        return _queue(conn, row, now, event, action, status, f"X-SMPP; {detail}")
    if not _wanted(row, event):
        return None
    failed = final_status(_failure(conn, row))
    return _queue(conn, row, now, event, action, failed.status, failed.diagnostic)


def _failure(conn: Connection, row: Any) -> Failure:
    """What is stored about the failure of this order row (read with FINAL_ROW)."""
    part_state, network_error = "", ""
    if row.status == OrderStatus.UNDELIVERABLE:
        failed = conn.execute(_FAILED_PART, {"order_id": row.id}).first()
        if failed is not None:
            part_state, network_error = failed.state, failed.error_code or ""
    return Failure(
        row.status, row.cause or "", row.cause_code, part_state, network_error, row.error or ""
    )


def queue_delay_dsns(conn: Connection, now: datetime, delay_after: float, limit: int) -> int:
    """Queue one DELAY DSN for each order deferred longer than `delay_after` seconds."""
    rows = conn.execute(
        select(_order.c.id, _order.c.error)
        .where(
            _order.c.status == OrderStatus.DEFERRED,
            _order.c.delay_notified.is_(False),
            _order.c.created_at <= now - timedelta(seconds=delay_after),
        )
        .limit(limit)
    ).all()
    for r in rows:
        conn.execute(update(_order).where(_order.c.id == r.id).values(delay_notified=True))
        row = conn.execute(FINAL_ROW, {"order_id": r.id}).one()
        delayed = delay_status(r.error)
        _queue(conn, row, now, "DELAY", "delayed", delayed.status, delayed.diagnostic)
    return len(rows)
