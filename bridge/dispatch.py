"""The MT worker: claim due orders, route them, submit them, record every outcome.

One step claims up to `concurrency` due orders (express first; a lease keeps them),
submits them concurrently through the first transport of their route that is bound (the
next one on a temporary failure; a transport whose binds are down is skipped while
another is up), and records all outcomes in one transaction: submitted with the SMSC's
ids, deferred with Postfix-style backoff (sooner when throttled), failed, expired, or
held. Every attempt leaves order_event lines saying why it happened and what each
transport answered (throttled, not-bound, unknown-outcome, failover, ...). After an
unknown outcome (response timeout, connection lost) the order is not sent through a
second SMSC at once: it is deferred and resubmitted (marked, so the transport can set
its duplicate marker) or held, per `on_unknown_outcome`. Nothing is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from bridge.retry import next_attempt
from bridge.routing import Route, check_routes, choose
from bridge.settings import DispatchSettings
from bridge.store import orders as order_sql
from bridge.store.models import utcnow
from bridge.store.orders import OrderWork
from bridge.store.smpp import record_attempt_events
from bridge.store.store import Store
from bridge.transports.base import (
    OutboundSms,
    PermanentFailure,
    TemporaryFailure,
    Transport,
)

log = logging.getLogger("bridge.dispatch")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one order in this attempt."""

    order_id: str
    kind: str  # submitted | deferred | final | held
    transport: str = ""
    message_ids: tuple[str, ...] = ()
    status: str = ""  # the final status for kind == "final"
    reason: str = ""
    next_at: datetime | None = None
    events: tuple[tuple[str, str], ...] = ()  # why this attempt, what each transport said


class Dispatcher:
    def __init__(
        self,
        settings: DispatchSettings,
        store: Store,
        transports: Mapping[str, Transport],
        routes: Sequence[Route],
        on_final: Callable[[], None] = lambda: None,
        on_submitted: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.transports = transports
        check_routes(routes, transports)
        self.routes = routes
        self.on_final = on_final
        self.on_submitted = on_submitted

    async def step(self) -> int:
        now = utcnow()
        claimed = await self.store.call(
            order_sql.claim_orders, now, self.settings.concurrency, self.settings.lease
        )
        if not claimed:
            return 0
        outcomes = await asyncio.gather(*(self._attempt(order) for order in claimed))
        await self.store.call(record_outcomes, utcnow(), outcomes)
        for outcome in outcomes:
            _log_outcome(outcome)
        if any(o.kind == "final" for o in outcomes):
            self.on_final()
        if any(o.kind == "submitted" for o in outcomes):
            self.on_submitted()
        return len(claimed)

    async def _attempt(self, order: OrderWork) -> Outcome:
        try:
            return await self._submit(order)
        except Exception:
            return Outcome(order.id, "held", reason=traceback.format_exc())

    async def _submit(self, order: OrderWork) -> Outcome:
        now = utcnow()
        events: list[tuple[str, str]] = [("attempt", _attempt_line(order))]
        if order.expires_at is not None and now >= order.expires_at:
            return Outcome(
                order.id,
                "final",
                status="expired",
                reason="validity period ran out before submission",
                events=tuple(events),
            )
        sms = outbound_sms(order, now)
        names = choose(order.recipient, self.routes)
        up = [n for n in names if _available(self.transports[n])]
        if up:  # a bind that is down is skipped while another transport of the route is up
            events += [("skipped", f"{n}: not bound") for n in names if n not in up]
        errors: list[str] = []
        retry_hint: float | None = None
        unknown = False
        for name in up or names:
            if errors:
                events.append(("failover", f"trying {name} after {errors[-1]}"))
            try:
                result = await self.transports[name].submit(sms)
            except TemporaryFailure as exc:
                events.append((exc.kind, f"{name}: {exc.reason}"))
                errors.append(f"{name}: {exc.reason}")
                if exc.retry_after is not None:
                    retry_hint = min(retry_hint or exc.retry_after, exc.retry_after)
                if exc.kind == UNKNOWN_OUTCOME:
                    unknown = True  # the SMSC may have it: no second SMSC right now
                    break
                continue
            except PermanentFailure as exc:
                return Outcome(
                    order.id,
                    "final",
                    transport=name,
                    status="failed",
                    reason=f"{name}: {exc.reason}",
                    events=tuple(events),
                )
            return Outcome(
                order.id,
                "submitted",
                transport=name,
                message_ids=result.message_ids,
                events=tuple(events),
            )
        reason = "; ".join(errors) or f"no route for {order.recipient}"
        if unknown:
            reason = f"{UNKNOWN_PREFIX}: {reason}"
            if self.settings.on_unknown_outcome == "hold":
                return Outcome(order.id, "held", reason=reason, events=tuple(events))
        next_at = next_attempt(
            order.created_at,
            utcnow(),
            minimum=self.settings.retry_min,
            maximum=self.settings.retry_max,
            lifetime=self.settings.lifetime,
            expires_at=order.expires_at,
        )
        if next_at is None:
            return Outcome(
                order.id,
                "final",
                status="expired",
                reason=f"gave up after {order.attempts} attempts: {reason}",
                events=tuple(events),
            )
        if retry_hint is not None:  # throttled: come back when the bind's pause is over
            next_at = min(next_at, utcnow() + timedelta(seconds=retry_hint))
        return Outcome(order.id, "deferred", reason=reason, next_at=next_at, events=tuple(events))


UNKNOWN_OUTCOME = "unknown-outcome"
UNKNOWN_PREFIX = "unknown outcome"


def _available(transport: Transport) -> bool:
    return bool(getattr(transport, "available", True))


def _attempt_line(order: OrderWork) -> str:
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
    )


def record_outcomes(conn: Connection, now: datetime, outcomes: Sequence[Outcome]) -> None:
    """Write every outcome of one dispatch step in one transaction (submitted ones batched)."""
    order_sql.record_submitted_many(
        conn,
        now,
        [
            order_sql.Submitted(o.order_id, o.transport, o.message_ids, o.events)
            for o in outcomes
            if o.kind == "submitted"
        ],
    )
    for o in outcomes:
        if o.kind == "submitted":
            continue
        record_attempt_events(conn, o.order_id, now, o.events)
        if o.kind == "deferred" and o.next_at is not None:
            order_sql.record_deferred(conn, o.order_id, now, o.next_at, o.reason)
        elif o.kind == "final":
            order_sql.record_final(conn, o.order_id, now, o.status, o.reason)
        else:
            order_sql.record_held(conn, o.order_id, now, o.reason)


def _log_outcome(o: Outcome) -> None:
    if o.kind == "submitted":
        log.info(
            "%s: submitted via %s, %d part(s), ids %s",
            o.order_id,
            o.transport,
            len(o.message_ids),
            ",".join(o.message_ids),
        )
    elif o.kind == "deferred":
        log.warning("%s: deferred until %s: %s", o.order_id, o.next_at, o.reason)
    elif o.kind == "final":
        log.warning("%s: %s: %s", o.order_id, o.status, o.reason)
    else:
        log.error("%s: held after an unexpected error:\n%s", o.order_id, o.reason)
