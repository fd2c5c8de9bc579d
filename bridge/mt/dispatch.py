"""The MT worker: claim due orders, route them, submit each on its own, record every outcome.

A step claims as many due orders (express first; a lease keeps them) as the SMSCs have
room for, and starts one task per order: each submit completes on its own, through the
first transport of its route that is bound (the next one on a temporary failure; a
transport whose binds are down is skipped while another is up), and its outcome is
recorded as soon as it is known (`dispatch_record.py`): submitted with the SMSC's ids
(whatever they are), deferred with Postfix-style backoff (sooner when throttled),
failed, expired, or held.

Room: an SMSC takes at most `limits.capacity` orders at a time (an SMPP transport four
times its windows, so they stay busy while the next orders are claimed); until half of
that is free again, the orders routed to it stay in the queue (the claim leaves them
out). So a slow or silent SMSC holds only its own traffic, and claims come in batches.
Sender rates: each sender id has a token bucket per SMSC (a long code about 1 SMS/s); an
order whose token is due within `HOLD` seconds waits for it, a later one goes back to
the queue until its token's time (without counting an attempt), so a busy sender never
blocks another one.

A claim's lease is not renewed: every submit ends by the claim's end less RECORD_MARGIN
(`Transport.submit(until=…)`), whatever it waits for (a bind, throttling, a sender's
token, a window slot, an answer), so that no other instance claims the order and sends it
again while this one still works on it; the settings refuse a lease too short for that.
An instance that held a claim past its end all the same (frozen: a paused VM, a host in
swap) sends nothing when it wakes (the SMPP session writes nothing after the send-by
time), and its late deferral, parking or hold of the order is written only while the
order is still under that claim (`Outcome.claim`): it never moves the due time of, or
uncounts, the claim another instance has taken since.

Every attempt leaves order_event lines saying why it happened and what each transport
answered. After an unknown outcome (response timeout, connection lost) the order is
not sent through a second SMSC at once: it is deferred and resubmitted (marked, so the
transport can set its duplicate marker where that is safe) or held, per
`on_unknown_outcome`. An SMS the SMSC accepted is never submitted again because its
bookkeeping failed: the record is retried (last resort: the status alone) until it holds.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from bridge import logcontext
from bridge.db.clock import utcnow
from bridge.db.store import Store
from bridge.metrics import Metrics, elapsed
from bridge.mt import orders as order_sql
from bridge.mt.causes import Cause, FailureCause
from bridge.mt.dispatch_record import UNDER_CLAIM, Claim, Outcome, OutcomeKind, Recorder
from bridge.mt.dispatch_sms import (
    UNKNOWN_OUTCOME,
    UNKNOWN_PREFIX,
    attempt_line,
    outbound_sms,
    with_replace,
)
from bridge.mt.orders import OrderWork
from bridge.mt.routing import Route, check_routes, choose
from bridge.mt.settings import RECORD_MARGIN, DispatchSettings
from bridge.mt.status import OrderStatus
from bridge.mt.steps import Steps
from bridge.retry import next_attempt, receipt_deadline
from bridge.smpp.throttle import SenderBuckets
from bridge.transports.base import (
    Transport,
    TransportPermanentFailure,
    TransportTemporaryFailure,
    UnsendableKind,
)

log = logging.getLogger("bridge.mt.dispatch")

__all__ = ["Dispatcher", "Outcome", "outbound_sms"]

HOLD = 1.0  # seconds: a sender token due sooner is waited for; later, the order is parked


class Dispatcher:
    def __init__(
        self,
        settings: DispatchSettings,
        store: Store,
        transports: Mapping[str, Transport],
        routes: Sequence[Route],
        *,
        steps: Steps,
        on_final: Callable[[], None] = lambda: None,  # a final outcome queued a notice
        on_submitted: Callable[[], None] = lambda: None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics.unregistered()
        self.store = store
        self.transports = transports
        check_routes(routes, transports)
        self.routes = routes
        self.on_final = on_final
        self.on_submitted = on_submitted
        self.wake: Callable[[], None] = lambda: None  # the worker's wake-up: room was freed
        self._filled = False  # the last claim took as many orders as it asked for
        self._skipped: tuple[str, ...] = ()  # the SMSCs the last claim left out (no room)
        self._tasks: dict[str, asyncio.Task[None]] = {}  # claimed orders, until recorded
        self._limits = {name: t.limits for name, t in transports.items()}  # fixed per transport
        self._lane = dict.fromkeys(transports, 0)  # orders inside each transport's submit
        self._recording = 0  # orders whose outcome is being recorded
        self._in_submit: dict[str, str] = {}  # order id -> transport, while submitting
        self._unrecorded: dict[str, tuple[str, datetime]] = {}  # -> (transport, submit start)
        self._buckets = SenderBuckets()
        self._booked: dict[str, tuple[str, float]] = {}  # a parked order's token: (transport, t)
        self.recorder = Recorder(store, lambda: self.on_final(), lambda: self.on_submitted(), steps)

    # --- claiming -------------------------------------------------------------------------

    async def step(self) -> int:
        """Claim what the SMSCs have room for and start each order's task."""
        limit, skip, self._skipped = self._claim_plan()
        self._filled = False
        if limit <= 0:
            return 0
        # Measured before the claim, so no later than the lease's start in the database:
        # every submit ends by `until`, leaving RECORD_MARGIN to record its outcome.
        until = asyncio.get_running_loop().time() + self.settings.lease - RECORD_MARGIN
        claimed = await self.recorder.claim(Claim(limit, self.settings.lease, tuple(skip)))
        self._filled = len(claimed) >= limit
        for order in claimed:
            if order.id in self._tasks:  # its lease ran out while its outcome is recorded
                continue
            task = asyncio.create_task(self._run(order, until), name=f"dispatch-{order.id}")
            self._tasks[order.id] = task
        self._forget_old_bookings()
        return len(claimed)

    def more(self) -> bool:
        """Whether a claim right after the last one can find something: the last claim took
        as many orders as it asked for (more may be due), or an SMSC it left out for want of
        room has room now. Else the worker waits: the rest comes with a wake-up (a new order,
        half of an SMSC's room freed, the claim budget freed, a sender's token due) or the
        poll tick (deferred orders, leases run out), as after a claim that found nothing.

        The re-step after a full claim comes after the new orders' tasks started (the
        worker yields first), so that the next plan counts them in their SMSC's room."""
        return self._filled or any(
            self._room(name) >= max(1, self._capacity(name) // 2) for name in self._skipped
        )

    def _claim_plan(self) -> tuple[int, list[tuple[str, tuple[str, ...]]], tuple[str, ...]]:
        """How many orders to claim, the routes whose first SMSC has no room, and those SMSCs.

        An SMSC is claimed for once half of its room is free, so that claims come in
        batches (each claim is a commit) while its windows stay busy with the rest.
        """
        # Orders between their claim and an SMSC (routing, waiting for a sender's token);
        # the ones inside an SMSC's room or being recorded are bounded elsewhere.
        waiting = len(self._tasks) - sum(self._lane.values()) - self._recording
        budget = self.settings.concurrency - waiting
        skip: list[tuple[str, tuple[str, ...]]] = []
        full: dict[str, None] = {}
        room: dict[str, int] = {}
        for i, route in enumerate(self.routes):
            first = self._first_choice(route.transports)
            capacity = self._capacity(first)
            free = capacity - self._lane[first]
            if free < max(1, capacity // 2):
                skip.append((route.digits, tuple(r.digits for r in self.routes[:i])))
                full[first] = None
            else:
                room[first] = free
        return min(budget, sum(room.values())), skip, tuple(full)

    def _first_choice(self, names: Sequence[str]) -> str:
        up = [n for n in names if _available(self.transports[n])]
        return (up or list(names))[0]

    def _capacity(self, name: str) -> int:
        return max(1, self._limits[name].capacity)

    def _room(self, name: str) -> int:
        return self._capacity(name) - self._lane[name]

    # --- one order ------------------------------------------------------------------------

    async def _run(self, order: OrderWork, until: float) -> None:
        # This task's log lines are about this order (and the SMSC it is tried on).
        logcontext.set_fields(order_id=order.id, mail_id=order.id.rpartition(".")[0] or None)
        try:
            try:
                outcome = await self._submit(order, until)
            except asyncio.CancelledError:
                raise
            except Exception:
                outcome = Outcome(order.id, OutcomeKind.HELD, reason=traceback.format_exc())
            if outcome.kind in UNDER_CLAIM:  # written only while the claim is still ours
                outcome = replace(outcome, claim=order.attempts)
            waiting = len(self._tasks) - sum(self._lane.values()) - self._recording
            self._recording += 1
            if waiting >= self.settings.concurrency:  # it held the last of the claim budget
                self.wake()
            try:
                await self.recorder.record(outcome)
            finally:
                self._recording -= 1
            self._count(order, outcome)
        finally:
            self._tasks.pop(order.id, None)
            self._unrecorded.pop(order.id, None)

    def _count(self, order: OrderWork, outcome: Outcome) -> None:
        m = self.metrics
        m.dispatch_outcomes.labels(outcome.kind.value).inc()
        if outcome.kind is OutcomeKind.SUBMITTED:
            m.orders_submitted.labels(outcome.transport).inc()
            if outcome.submitted_at is not None:
                m.submit_seconds.observe(elapsed(order.created_at, outcome.submitted_at))

    async def _submit(self, order: OrderWork, until: float) -> Outcome:
        """Submit `order` through its route; done by `until` (loop time: its claim's end
        less the time to record the outcome), so that no other instance claims it while
        this one still works on it."""
        now = utcnow()
        if order.expires_at is not None and now >= order.expires_at:
            return Outcome(
                order.id,
                OutcomeKind.FINAL,
                status=OrderStatus.EXPIRED,
                reason="validity period ran out before submission",
                events=(("attempt", attempt_line(order)),),
                cause=Cause(FailureCause.VALIDITY_PASSED),
            )
        names = choose(order.recipient, self.routes)
        up = [n for n in names if _available(self.transports[n])]
        candidates = up or list(names)
        if candidates:
            first = candidates[0]
            if self._room(first) <= 0:  # claimed together with others for the same SMSC
                return Outcome(order.id, OutcomeKind.PARKED, next_at=now, reason=f"{first} is full")
            wait = self._token_wait(order, first)
            if wait > HOLD:
                return Outcome(
                    order.id,
                    OutcomeKind.PARKED,
                    next_at=now + timedelta(seconds=wait),
                    reason=f"sender {order.sender_id} at its sending rate on {first}",
                )
            if wait > 0:
                await asyncio.sleep(wait)
        events: list[tuple[str, str]] = [("attempt", attempt_line(order))]
        if up:  # a bind that is down is skipped while another transport of the route is up
            events += [("skipped", f"{n}: not bound") for n in names if n not in up]
        sms = outbound_sms(order, now)
        if sms.resubmit:
            pending = await self.store.call(
                order_sql.others_pending, order.id, order.recipient, order.sender_id
            )
            sms = with_replace(sms, pending, events)
        errors: list[str] = []
        retry_hint: float | None = None
        unknown = False
        for name in candidates:
            if errors:
                events.append(("failover", f"trying {name} after {errors[-1]}"))
                wait = self._token_wait(order, name)
                if asyncio.get_running_loop().time() + wait >= until:
                    errors.append(f"{name}: the sender's token comes after the claim ends")
                    events.append(("claim-ends", errors[-1]))
                    break
                if wait > 0:  # a failover is rare: wait for the sender's token here
                    await asyncio.sleep(wait)
            logcontext.set_fields(smsc=name)
            started = utcnow()
            self._unrecorded[order.id] = (name, started)
            self._in_submit[order.id] = name
            self._lane[name] += 1
            try:
                result = await self.transports[name].submit(sms, until=until)
            except TransportTemporaryFailure as exc:
                events.append((exc.kind, f"{name}: {exc.reason}"))
                errors.append(f"{name}: {exc.reason}")
                if exc.retry_after is not None:
                    retry_hint = min(retry_hint or exc.retry_after, exc.retry_after)
                if exc.kind == UNKNOWN_OUTCOME:
                    unknown = True  # the SMSC may have it: no second SMSC right now
                    break
                continue
            except TransportPermanentFailure as exc:
                return Outcome(
                    order.id,
                    OutcomeKind.FINAL,
                    transport=name,
                    status=OrderStatus.FAILED,
                    reason=f"{name}: {exc.reason}",
                    events=tuple(events),
                    cause=refusal_cause(exc),
                )
            finally:
                self._lane[name] -= 1
                self._in_submit.pop(order.id, None)
                capacity = self._capacity(name)
                if capacity - self._lane[name] == max(1, capacity // 2):
                    self.wake()  # half of this SMSC's room is free again: claim a batch
            limits = self._limits[name]
            return Outcome(
                order.id,
                OutcomeKind.SUBMITTED,
                transport=name,
                message_ids=result.message_ids,
                events=tuple(events),
                submitted_at=started,
                receipt_due=receipt_deadline(
                    started,
                    order.expires_at,
                    timeout=limits.receipt_timeout,
                    grace=limits.receipt_grace,
                ),
            )
        return self._not_submitted(order, events, errors, retry_hint, unknown)

    def _not_submitted(
        self,
        order: OrderWork,
        events: list[tuple[str, str]],
        errors: list[str],
        retry_hint: float | None,
        unknown: bool,
    ) -> Outcome:
        reason = "; ".join(errors) or f"no route for {order.recipient}"
        if unknown:
            reason = f"{UNKNOWN_PREFIX}: {reason}"
            if self.settings.on_unknown_outcome == "hold":
                return Outcome(order.id, OutcomeKind.HELD, reason=reason, events=tuple(events))
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
                OutcomeKind.FINAL,
                status=OrderStatus.EXPIRED,
                reason=f"gave up after {order.attempts} attempts: {reason}",
                events=tuple(events),
                cause=Cause(FailureCause.RETRIES_EXHAUSTED if errors else FailureCause.NO_ROUTE),
            )
        if retry_hint is not None:  # throttled: come back when the bind's pause is over
            next_at = min(next_at, utcnow() + timedelta(seconds=retry_hint))
        return Outcome(
            order.id, OutcomeKind.DEFERRED, reason=reason, next_at=next_at, events=tuple(events)
        )

    def _token_wait(self, order: OrderWork, name: str) -> float:
        """Seconds until the sender may send through `name` (its token is booked now)."""
        rates = self._limits[name].rates
        if rates.rate_for(order.sender_id) <= 0 and not self._booked:
            return 0.0  # no rate for this sender (the common case): nothing to book
        now = asyncio.get_running_loop().time()
        booked = self._booked.pop(order.id, None)
        if booked is not None and booked[0] == name:
            return max(0.0, booked[1] - now)
        wait = self._buckets.reserve(name, order.sender_id, rates, now)
        if wait > HOLD:  # parked until then: claim it again on time, not at the next poll
            self._booked[order.id] = (name, now + wait)
            asyncio.get_running_loop().call_later(wait + 0.005, lambda: self.wake())
        return wait

    def _forget_old_bookings(self) -> None:
        if len(self._booked) < 10_000:
            return
        cutoff = asyncio.get_running_loop().time() - self.settings.lease
        for order_id in [o for o, (_, at) in self._booked.items() if at < cutoff]:
            del self._booked[order_id]

    # --- receipts and stopping ------------------------------------------------------------

    def receipt_hold(self) -> dict[str, datetime]:
        """Per transport, the start of its oldest submit whose outcome is not recorded yet.

        A receipt that arrived after that may be about the part being recorded, so the
        receipts step lets it wait rather than match it to an older part with its id.
        """
        hold: dict[str, datetime] = {}
        for name, started in self._unrecorded.values():
            if name not in hold or started < hold[name]:
                hold[name] = started
        return hold

    async def stop(self, grace: float) -> None:
        """Let running submits finish (at most `grace` s); record the cut-off ones as unknown."""
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        cut = dict(self._in_submit)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if cut:
            await self.recorder.record_cut(cut)


_UNSENDABLE: dict[str, FailureCause] = {
    UnsendableKind.SENDER: FailureCause.SENDER_INVALID,
    UnsendableKind.TEXT: FailureCause.TEXT_INVALID,
}


def refusal_cause(exc: TransportPermanentFailure) -> Cause:
    """Why a transport's permanent failure failed the order: the message could not be put
    into a submit (sender, text), or the SMSC refused it (with its command_status)."""
    unsendable = _UNSENDABLE.get(exc.kind)
    return Cause(unsendable) if unsendable else Cause(FailureCause.SMSC_REFUSED, exc.code)


def _available(transport: Transport) -> bool:
    return bool(getattr(transport, "available", True))
