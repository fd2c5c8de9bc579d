"""The MT worker: claim due orders, route them, submit them, record every outcome.

One step claims up to `concurrency` due orders (a lease keeps them), submits them
concurrently through the first transport of their route (the next one on a temporary
failure), and records all outcomes in one transaction: submitted with the SMSC's ids,
deferred with Postfix-style backoff, failed, expired, or held with the traceback when
something unexpected happened. Nothing is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from bridge.retry import next_attempt
from bridge.routing import Route, choose
from bridge.settings import DispatchSettings
from bridge.store import orders as order_sql
from bridge.store.models import utcnow
from bridge.store.orders import OrderWork
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
        if order.expires_at is not None and now >= order.expires_at:
            return Outcome(
                order.id,
                "final",
                status="expired",
                reason="validity period ran out before submission",
            )
        names = choose(order.recipient, self.routes)
        sms = OutboundSms(
            order_id=order.id,
            destination=order.recipient,
            source=order.sender_id,
            text=order.text,
            encoding="ucs2" if order.encoding == "ucs2" else "gsm7",
        )
        errors: list[str] = []
        for name in names:
            try:
                result = await self.transports[name].submit(sms)
            except TemporaryFailure as exc:
                errors.append(f"{name}: {exc.reason}")
                continue
            except PermanentFailure as exc:
                return Outcome(
                    order.id,
                    "final",
                    transport=name,
                    status="failed",
                    reason=f"{name}: {exc.reason}",
                )
            return Outcome(order.id, "submitted", transport=name, message_ids=result.message_ids)
        reason = "; ".join(errors) or f"no route for {order.recipient}"
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
            )
        return Outcome(order.id, "deferred", reason=reason, next_at=next_at)


def record_outcomes(conn: Connection, now: datetime, outcomes: Sequence[Outcome]) -> None:
    """Write every outcome of one dispatch step in one transaction."""
    for o in outcomes:
        if o.kind == "submitted":
            order_sql.record_submitted(conn, o.order_id, now, o.transport, o.message_ids)
        elif o.kind == "deferred" and o.next_at is not None:
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
