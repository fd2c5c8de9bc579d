"""Store functions for inbound SMS: keep each as received, then find whom it is for.

`insert_inbound` is all that happens before the SMSC gets its deliver_sm_resp.
`route_inbound` is the inbound step's reply rule: the user who most recently sent
an SMS to this number within the reply window gets it by mail (SMS2Mail), threaded
under their original mail; with nobody to give it to the row is `unroutable` (kept).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select, update

from bridge.store.models import Inbound, Mail, Order, User
from bridge.store.notices import queue_notice
from bridge.transports.base import InboundSms

log = logging.getLogger("bridge.inbound")

_inbound = Inbound.__table__  # type: ignore[attr-defined]
_order = Order.__table__  # type: ignore[attr-defined]
_mail = Mail.__table__  # type: ignore[attr-defined]
_user = User.__table__  # type: ignore[attr-defined]


def insert_inbound(conn: Connection, sms: InboundSms, now: datetime) -> int:
    result = conn.execute(
        insert(_inbound).values(
            transport=sms.transport,
            source=sms.source,
            destination=sms.destination,
            text=sms.text,
            encoding=sms.encoding,
            parts=sms.parts,
            received_at=now,
            status="received",
            next_attempt_at=now,
            error="",
        )
    )
    key = result.inserted_primary_key
    return int(key[0]) if key else 0


@dataclass(frozen=True, slots=True)
class Routed:
    notified: int
    unroutable: int


def route_inbound(
    conn: Connection, now: datetime, limit: int, reply_window: float, domain: str
) -> Routed:
    rows = conn.execute(
        select(_inbound)
        .where(_inbound.c.status == "received", _inbound.c.next_attempt_at <= now)
        .order_by(_inbound.c.id)
        .limit(limit)
    ).all()
    notified = unroutable = 0
    since = now - timedelta(seconds=reply_window)
    for r in rows:
        last = conn.execute(
            select(
                _order.c.id,
                _order.c.text,
                _order.c.sender_id,
                _order.c.created_at,
                _mail.c.message_id,
                _mail.c.subject,
                _user.c.address,
                _user.c.display_name,
            )
            .select_from(_order.join(_mail).join(_user, _order.c.user_id == _user.c.id))
            .where(
                _order.c.recipient == r.source,
                _order.c.created_at >= since,
                _order.c.status.notin_(["failed", "held"]),
            )
            .order_by(_order.c.created_at.desc(), _order.c.id.desc())
            .limit(1)
        ).first()
        if last is None:
            conn.execute(
                update(_inbound)
                .where(_inbound.c.id == r.id)
                .values(
                    status="unroutable", error="no order to this number within the reply window"
                )
            )
            log.warning(
                "inbound %s from %s: nobody texted this number recently; kept as unroutable",
                r.id,
                r.source,
            )
            unroutable += 1
            continue
        context = {
            "inbound_id": r.id,
            "source": r.source,
            "destination": r.destination,
            "text": r.text,
            "received_at": r.received_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "order_id": last.id,
            "original_text": last.text,
            "original_subject": last.subject,
            "in_reply_to": last.message_id,
            "reply_to": f"{r.source}@{domain}",
            "to_name": last.display_name,
        }
        queue_notice(
            conn, "sms2mail", last.address, context, now, inbound_id=r.id, order_id=last.id
        )
        conn.execute(
            update(_inbound)
            .where(_inbound.c.id == r.id)
            .values(status="notified", order_id=last.id)
        )
        notified += 1
    return Routed(notified, unroutable)
