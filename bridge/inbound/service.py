"""The inbound step: route each stored MO (number, keyword, STOP/START) and run its actions.

Every message is handled atomically: routing reads, the actions' writes and the row's
new status commit together, so a crash re-runs the message rather than losing it. Up to
`HANDLE_BATCH` messages share one transaction, each in a savepoint of its own (one
commit for ten, and the transaction still short enough that the intake's commits do not
wait long behind it). STOP/START keywords (the whole message, several languages) come
first and replace any other action; on a shared number where nothing tells whose
conversation it is (`Choice.unmatched`), a STOP opts out of every customer. A message
whose actions reached nobody goes to the number's fallback addresses or the customer's
postmaster; `unroutable` only when no address exists at all. A message from a sender
that already sent `[inbound] mo_limit` SMS to its number within `mo_limit_window` is kept
as `limited` and its actions are not run (a flood makes no mail, push or SMS); a STOP or
START still changes the stop list. An unexpected error holds the message (status `held`,
traceback kept).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from bridge.db.clock import utcnow
from bridge.db.prepared import savepoint
from bridge.db.store import Store
from bridge.inbound import store as inbound_sql
from bridge.inbound.actions import Actions, Effects, Message
from bridge.inbound.actions_store import is_stopped
from bridge.inbound.choice import choose
from bridge.inbound.config import Sms2MailAction, StopAction
from bridge.inbound.keywords import whole_message_keyword
from bridge.inbound.settings import InboundSettings
from bridge.inbound.status import InboundStatus
from bridge.metrics import Metrics
from bridge.notices.customer_templates import Templates
from bridge.push.settings import PushSettings

log = logging.getLogger("bridge.inbound")

HANDLE_BATCH = 10  # messages handled in one transaction, each in a savepoint


class InboundService:
    def __init__(
        self,
        settings: InboundSettings,
        push: PushSettings,
        store: Store,
        templates: Templates,
        domain: str,
        *,
        on_notice: Callable[[], None] = lambda: None,
        on_order: Callable[[], None] = lambda: None,
        on_push: Callable[[], None] = lambda: None,
        default_timezone: str = "UTC",
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics.unregistered()
        self.store = store
        self.actions = Actions(settings, push, templates, domain, default_timezone)
        self._wake = (on_notice, on_order, on_push)

    async def step(self) -> int:
        ids = await self.store.call(inbound_sql.due_inbound, utcnow(), 100)
        for at in range(0, len(ids), HANDLE_BATCH):
            # A storage fault fails the whole batch: the worker retries the step, and its
            # messages stay `received`.
            done = await self.store.call(self.handle_batch, ids[at : at + HANDLE_BATCH], utcnow())
            for fx in done:
                for count, wake in zip((fx.notices, fx.orders, fx.pushes), self._wake, strict=True):
                    if count:
                        wake()
        return len(ids)

    def handle_batch(self, conn: Connection, ids: list[int], now: datetime) -> list[Effects]:
        """`handle` for each message, each in a savepoint of the caller's transaction: an
        unexpected error undoes that message's writes and holds it (status `held`, the
        traceback kept); a database or system error (`OSError`) fails the whole
        transaction, the store's storage fault: the step is tried again."""
        done: list[Effects] = []
        for inbound_id in ids:
            try:
                with savepoint(conn, "inbound"):
                    fx = self.handle(conn, inbound_id, now)
            except (SQLAlchemyError, OSError):
                raise  # the database's or the system's fault, not the message's: retried
            except Exception:
                tb = traceback.format_exc()
                log.error("inbound %s held after an unexpected error:\n%s", inbound_id, tb)
                inbound_sql.mark_inbound(conn, inbound_id, InboundStatus.HELD, tb)
                continue
            if fx is not None:
                done.append(fx)
        return done

    def handle(self, conn: Connection, inbound_id: int, now: datetime) -> Effects | None:
        """Route and act on one message, in the caller's transaction."""
        row = inbound_sql.load_inbound(conn, inbound_id)
        if row is None:
            return None
        s = self.settings
        rows = inbound_sql.numbers_for(conn, row.destination)
        assigned = inbound_sql.assignments_for(
            conn, row.source, row.destination, now, None, s.reply_window
        )
        choice = choose(
            rows, row.destination, row.text, assigned[0].customer_id if assigned else None
        )
        inbound_sql.record_route(conn, row.id, choice.customer_id, choice.route, choice.keyword)
        customer = inbound_sql.customer_inbound(conn, choice.customer_id)
        msg = Message(row, choice, customer)
        actions = choice.actions
        stop_msg = Message(row, choice, None) if choice.unmatched else msg
        if whole_message_keyword(row.text, s.stop_keywords):
            actions, msg = (StopAction(type="stop"),), stop_msg
        elif whole_message_keyword(row.text, s.start_keywords) and is_stopped(
            conn,
            stop_msg.customer.id if stop_msg.customer else 0,
            row.source,
            (row.destination,),
        ):  # "Yes" from someone who never opted out is an ordinary answer
            actions, msg = (StopAction(type="start"),), stop_msg
        elif self.limited(conn, row):  # (not a STOP or START: opting out always works)
            return Effects()
        fx = Effects()
        for action in actions:
            self.actions.run(conn, msg, action, now, fx)
            self.metrics.inbound_actions.labels(action.type).inc()
        if not (fx.notices or fx.pushes or fx.handled):
            # The actions reached nobody (e.g. a rate-limited auto-reply): never silent.
            self.actions.sms2mail(conn, msg, Sms2MailAction(mode="static"), now, fx)
            self.metrics.inbound_actions.labels("sms2mail").inc()
        if fx.notices or fx.pushes or fx.handled:
            status = InboundStatus.NOTIFIED if fx.notices else InboundStatus.HANDLED
            inbound_sql.mark_inbound(conn, row.id, status, "; ".join(fx.notes), fx.order_id)
            log.info(
                "inbound %s from %s to %s: %s (keyword %r) -> %d mail(s), %d SMS, %d push(es)%s",
                row.id,
                row.source,
                row.destination,
                msg.customer_name or "no customer",
                choice.keyword,
                fx.notices,
                fx.orders,
                fx.pushes,
                f"; {'; '.join(fx.notes)}" if fx.notes else "",
            )
        else:
            if choice.unmatched:
                fx.notes.append(
                    "shared number: no keyword and no reply assignment matched, and neither a "
                    "customer with takes_unmatched nor [inbound] postmaster is configured"
                )
            reason = "; ".join(dict.fromkeys(fx.notes)) or "no action reached anyone"  # once each
            self.metrics.inbound_actions.labels("unroutable").inc()
            inbound_sql.mark_inbound(conn, row.id, InboundStatus.UNROUTABLE, reason)
            log.warning(
                "inbound %s from %s to %s: nobody to give it to (%s); kept as unroutable",
                row.id,
                row.source,
                row.destination,
                reason,
            )
        return fx

    def limited(self, conn: Connection, row: inbound_sql.InboundRow) -> bool:
        """Whether the message is over `[inbound] mo_limit`: its sender sent that many SMS to
        its number within `mo_limit_window` before it. Then it is kept as `limited`, with a
        note, and its actions are not run; a warning is logged when a sender passes the
        limit, not again while its SMS to the number within the window are limited."""
        s = self.settings
        if not s.mo_limit:
            return False
        since = row.received_at - timedelta(seconds=s.mo_limit_window)
        if inbound_sql.count_earlier(conn, row, since, s.mo_limit) < s.mo_limit:
            return False
        limit = f"{s.mo_limit} SMS in {s.mo_limit_window:g} s"
        if not inbound_sql.limited_earlier(conn, row, since):
            log.warning(
                "inbound %s from %s to %s: over [inbound] mo_limit (%s from a sender to a "
                "number); its actions and those of the sender's next SMS to the number are "
                "not run until it sends less (kept as limited)",
                row.id,
                row.source,
                row.destination,
                limit,
            )
        inbound_sql.mark_inbound(
            conn, row.id, InboundStatus.LIMITED, f"over [inbound] mo_limit ({limit}): no action run"
        )
        self.metrics.inbound_actions.labels("limited").inc()
        return True
