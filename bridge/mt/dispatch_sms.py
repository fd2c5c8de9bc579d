"""The transport's view of an order: `OutboundSms` from an order and its policy.

Also the words dispatch writes into an order's history and error: the attempt line
(why this attempt: the previous attempt's reason, "resubmit" after an unknown outcome),
and whether a resubmit may carry the SMSC's replace_if_present marker: only when no
other order from the same sender to the same number may still be at an SMSC, since
the SMSC would replace that message (same source, destination and service_type).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bridge.mt.orders import OrderWork
from bridge.values import OutboundSms, SmsSegment

log = logging.getLogger("bridge.mt.dispatch")

UNKNOWN_OUTCOME = "unknown-outcome"
UNKNOWN_PREFIX = "unknown outcome"


def with_replace(
    sms: OutboundSms, pending: Sequence[str], events: list[tuple[str, str]]
) -> OutboundSms:
    """A resubmit may carry replace_if_present only while no other order could be replaced."""
    if not pending:
        return dataclasses.replace(sms, may_replace=True)
    events.append(
        (
            "marker",
            f"no replace_if_present: {', '.join(pending)} to the same number may still be at "
            "the SMSC and would be replaced",
        )
    )
    return sms


def attempt_line(order: OrderWork) -> str:
    line = f"attempt {order.attempts}"
    if order.error:
        line += f" after: {order.error.splitlines()[-1][:300]}"
    if order.error.startswith(UNKNOWN_PREFIX):
        line += " (resubmit: the SMSC may already have it)"
    return line


def _send_at(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        log.warning("policy send_at %r is not an ISO time; sending now", value)
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def outbound_sms(order: OrderWork, now: datetime) -> OutboundSms:
    """The transport's view of an order, with the message options from its policy."""
    policy = order.policy
    validity: float | None = None
    if order.expires_at is not None:
        validity = max(1.0, (order.expires_at - now).total_seconds())
    elif isinstance(policy.get("validity"), int | float):
        validity = float(policy["validity"])
    return OutboundSms(
        order_id=order.id,
        destination=order.recipient,
        source=order.sender_id,
        text=order.text,
        encoding="ucs2" if order.encoding == "ucs2" else "gsm7",
        validity=validity,
        flash=bool(policy.get("flash", False)),
        priority=order.priority,
        schedule_at=_send_at(policy.get("send_at")),
        resubmit=order.error.startswith(UNKNOWN_PREFIX),
        segments=_segments(policy.get("smpp_parts")),
    )


def _segments(value: object) -> tuple[SmsSegment, ...]:
    """The parts an SMPP client sent (`Part.stored()` of bridge/smpp_server/submit.py)."""
    if not isinstance(value, list):
        return ()
    return tuple(_segment(part) for part in value)


def _segment(part: list[Any]) -> SmsSegment:
    """[short_message hex, esm_class, data_coding] and, for a part concatenated by sar_*
    TLVs, [[tag, value hex], ...] of those TLVs."""
    sm, esm, dc, *rest = part
    tlvs = tuple((int(tag), bytes.fromhex(str(v))) for tag, v in (rest[0] if rest else ()))
    return SmsSegment(bytes.fromhex(str(sm)), int(esm), int(dc), tlvs)
