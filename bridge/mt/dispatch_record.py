"""Dispatch outcomes: what one attempt at an order ended with, and how it is written down.

Each order's outcome is recorded on its own as soon as its submit ended; outcomes that
end while a commit runs are written together in the next one (`Store.grouped`), and
when such a batch fails its outcomes are written one by one, so one bad outcome never
undoes another. `record_outcomes` is the batch: submitted orders (parts, statuses,
history, receipt deadline) in a few statements, then the rest, then the claims queued
with them. Claims are batches of their own in the lane of the commits that queue orders
(`bridge.mt.lanes.ORDERS`), after them (`after_others`): a claim woken by a mail being
committed claims its orders in the same transaction; a claim with no message to join
commits beside the lane (`aside`), so that it never holds a message's commit. Outcomes
go in the lane of the receipts (`lanes.OUTCOMES`), which commits side by side with it on
PostgreSQL; with one database thread (SQLite) all of them share each commit. `Recorder`
makes sure an accepted submit is recorded, whatever it takes, so that it is never sent twice.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from bridge.db.clock import utcnow
from bridge.db.store import Store
from bridge.errors import StorageUnreachable
from bridge.mt import lanes
from bridge.mt import orders as order_sql
from bridge.mt.causes import Cause
from bridge.mt.dispatch_sms import UNKNOWN_OUTCOME, UNKNOWN_PREFIX
from bridge.mt.status import OrderStatus
from bridge.mt.steps import Steps
from bridge.mt.submitted import Submitted, record_submitted_bare, record_submitted_many

log = logging.getLogger("bridge.mt.dispatch")


class OutcomeKind(enum.StrEnum):
    """How one attempt at an order ended."""

    SUBMITTED = "submitted"  # the SMSC accepted every part
    DEFERRED = "deferred"  # a temporary failure: due again at `next_at`
    FINAL = "final"  # failed or expired for good: `status` says which
    HELD = "held"  # an unexpected error: waits for an operator
    PARKED = "parked"  # not attempted: no room at the SMSC yet, or the sender's rate


# The outcomes written only while the order is still under the claim they ran under: what
# they write (a due time, an attempt not counted, a hold) is the claim's to decide.
UNDER_CLAIM = frozenset({OutcomeKind.DEFERRED, OutcomeKind.PARKED, OutcomeKind.HELD})


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one order in this attempt."""

    order_id: str
    kind: OutcomeKind
    transport: str = ""
    message_ids: tuple[str, ...] = ()
    status: OrderStatus | None = None  # the final status for kind FINAL
    reason: str = ""
    next_at: datetime | None = None
    events: tuple[tuple[str, str], ...] = ()  # why this attempt, what each transport said
    submitted_at: datetime | None = None  # when the accepted submit began
    receipt_due: datetime | None = None  # when waiting for its final report ends
    cause: Cause | None = None  # for kind FINAL: why, for the DSN's status code
    # The attempt count of the claim this attempt ran under: a deferral, a parking or a
    # hold is written only while the order is still under it (`orders.under_claim`);
    # None: no condition (an accepted submit or a final failure is written whoever
    # holds the order now).
    claim: int | None = None

    def submitted(self) -> Submitted:
        return Submitted(
            self.order_id,
            self.transport,
            self.message_ids,
            self.events,
            self.submitted_at,
            self.receipt_due,
        )


@dataclass(frozen=True, slots=True)
class Claim:
    """A claim of due orders, made in a group commit (`Recorder.claim`)."""

    limit: int
    lease: float
    skip: tuple[tuple[str, tuple[str, ...]], ...] = ()


def record_outcomes(
    conn: Connection,
    items: Sequence[Outcome | Claim],
    *,
    steps: Steps,
) -> list[list[order_sql.OrderWork] | int]:
    """Write the outcomes that ended while the previous commit ran, then make the claims
    queued with them, in one transaction; a claim's result is its orders, an outcome's
    the number of notices its final steps queued (0 unless it made the order final)."""
    now = utcnow()
    outcomes = [o for o in items if isinstance(o, Outcome)]
    submitted = [o.submitted() for o in outcomes if o.kind == OutcomeKind.SUBMITTED]
    record_submitted_many(conn, now, submitted, steps=steps)
    order_sql.record_parked(
        conn,
        [(o.order_id, o.next_at or now, o.claim) for o in outcomes if o.kind == OutcomeKind.PARKED],
    )
    notices: dict[str, int] = {}
    for o in outcomes:
        if o.kind in (OutcomeKind.SUBMITTED, OutcomeKind.PARKED):
            continue
        order_sql.record_attempt_events(conn, o.order_id, now, o.events)
        if o.kind == OutcomeKind.DEFERRED and o.next_at is not None:
            order_sql.record_deferred(conn, o.order_id, now, o.next_at, o.reason, o.claim)
        elif o.kind == OutcomeKind.FINAL:
            final = (o.order_id, o.status or "", o.reason)
            notices[o.order_id] = order_sql.record_final_many(
                conn, [final], now, steps=steps, cause=o.cause
            ).notices
        else:
            order_sql.record_held(conn, o.order_id, now, o.reason, o.claim)
    return [
        order_sql.claim_orders(conn, now, i.limit, i.lease, i.skip)
        if isinstance(i, Claim)
        else notices.get(i.order_id, 0)
        for i in items
    ]


def log_outcome(o: Outcome) -> None:
    if o.kind == OutcomeKind.SUBMITTED:
        log.info(
            "%s: submitted via %s, %d part(s), ids %s",
            o.order_id,
            o.transport,
            len(o.message_ids),
            ",".join(i or '""' for i in o.message_ids),
        )
    elif o.kind == OutcomeKind.PARKED:
        log.debug("%s: waits until %s: %s", o.order_id, o.next_at, o.reason)
    elif o.kind == OutcomeKind.DEFERRED:
        log.warning("%s: deferred until %s: %s", o.order_id, o.next_at, o.reason)
    elif o.kind == OutcomeKind.FINAL:
        log.warning("%s: %s: %s", o.order_id, o.status, o.reason)
    else:
        log.error("%s: held after an unexpected error:\n%s", o.order_id, o.reason)


class Recorder:
    """Records each outcome as soon as it is known, in the group commit of its moment.

    A batch that fails is written outcome by outcome (`Store.grouped`). When an
    accepted submit still cannot be recorded, its status alone is written; when even
    that fails, or the database cannot be reached at all (a failover), the whole record
    is tried again with backoff while the dispatcher keeps the order, so it is never
    submitted a second time and keeps its parts (receipts still match it).
    """

    def __init__(
        self,
        store: Store,
        on_final: Callable[[], None],
        on_submitted: Callable[[], None],
        steps: Steps,
    ) -> None:
        self.store = store
        # two group functions: the outcomes' and the claims' (each a lane of its own)
        self._record = functools.partial(record_outcomes, steps=steps)
        self._claim = functools.partial(record_outcomes, steps=steps)
        self.on_final = on_final
        self.on_submitted = on_submitted
        self.unrecorded: dict[str, Outcome] = {}  # accepted submits waiting to be recorded

    async def record(self, outcome: Outcome) -> None:
        """Record the outcome; an accepted submit is retried until it holds (never resent)."""
        delay = 1.0
        notices: int | list[order_sql.OrderWork] = 0  # queued by its final steps
        while True:
            try:
                notices = await self.store.grouped(
                    self._record, outcome, lane=lanes.OUTCOMES, after_others=True
                )
                break
            except Exception as exc:
                if outcome.kind != OutcomeKind.SUBMITTED:
                    log.error(
                        "%s: %s outcome not recorded (%s); the order is tried again when its "
                        "lease runs out",
                        outcome.order_id,
                        outcome.kind,
                        exc,
                    )
                    return
                if isinstance(exc, StorageUnreachable):  # a failover, a lost connection
                    log.error(
                        "%s: accepted by %s as %s, but the database is unreachable: %s",
                        outcome.order_id,
                        outcome.transport,
                        ",".join(i or '""' for i in outcome.message_ids),
                        exc,
                    )
                elif await self._bare(outcome, exc):
                    break
            log.error(
                "%s: accepted by %s but not recorded yet; trying again in %.0f s (it is not "
                "sent again meanwhile)",
                outcome.order_id,
                outcome.transport,
                delay,
            )
            self.unrecorded[outcome.order_id] = outcome
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                log.error(
                    "%s: accepted by %s as %s, but the bridge stopped before it was recorded: "
                    "it is sent again when its lease runs out",
                    outcome.order_id,
                    outcome.transport,
                    ",".join(i or '""' for i in outcome.message_ids),
                )
                raise
            delay = min(60.0, delay * 2)
        self.unrecorded.pop(outcome.order_id, None)
        log_outcome(outcome)
        if outcome.kind == OutcomeKind.FINAL and notices:
            self.on_final()  # the final steps queued a notice: the mailer has work
        elif outcome.kind == OutcomeKind.SUBMITTED:
            self.on_submitted()

    async def _bare(self, outcome: Outcome, exc: Exception) -> bool:
        """After the full record failed: the submitted status alone. True once it holds."""
        ids = ",".join(i or '""' for i in outcome.message_ids)
        log.error(
            "%s: accepted by %s as %s, but recording its parts failed: %s",
            outcome.order_id,
            outcome.transport,
            ids,
            exc,
        )
        try:
            done = await self.store.call(
                record_submitted_bare, outcome.submitted(), utcnow(), f"{exc}"[:300]
            )
        except Exception as again:
            log.error("%s: recording its submitted status failed too: %s", outcome.order_id, again)
            return False
        if done:
            log.warning(
                "%s: recorded as submitted without its parts (receipts for it cannot be "
                "matched; the receipt timeout ends it)",
                outcome.order_id,
            )
        else:
            log.warning("%s: no longer waiting to be sent (gone or recorded)", outcome.order_id)
        return True

    async def claim(self, claim: Claim) -> list[order_sql.OrderWork]:
        """Claim due orders in the next group commit of the lane that queues orders, after
        what the others write in it (the mails just accepted); with nothing to join,
        beside that lane (and with one database thread, with the outcomes ending
        meanwhile too)."""
        claimed = await self.store.grouped(
            self._claim, claim, lane=lanes.ORDERS, after_others=True, aside=True
        )
        assert isinstance(claimed, list)
        return claimed

    async def record_cut(self, cut: Mapping[str, str]) -> None:
        """Orders whose submit was cut off by a stop (order id -> transport): unknown outcome."""
        now = utcnow()
        outcomes = [
            Outcome(
                order_id,
                OutcomeKind.DEFERRED,
                reason=f"{UNKNOWN_PREFIX}: {name}: the bridge stopped before the SMSC answered",
                next_at=now,
                events=((UNKNOWN_OUTCOME, f"{name}: stopped while waiting for the answer"),),
            )
            for order_id, name in cut.items()
        ]
        try:
            await self.store.call(self._record, outcomes)
        except Exception as exc:
            log.error("orders cut off by the stop not recorded (%s): tried again later", exc)
        log.warning("stopped while %d submit(s) waited for the SMSC: resubmitted later", len(cut))
