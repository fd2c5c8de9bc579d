"""One bind of an SMSC transport: its ESME(s), token buckets, throttle pause and counters.

A bind is a transceiver, or a transmitter+receiver pair ("pair"). `send` waits while
the bind is paused after throttling, then for a token of the bind's bucket and of
the SMSC's shared bucket, then takes a window slot in the session; none of these waits
goes past the request's send-by time (the order's claim must still hold its answer).
A long SMS takes its parts' tokens together, before its first part goes (`reserve`):
all or none, so a rate never stops a message after its first parts went.
"""

from __future__ import annotations

import asyncio
import math
import random

from bridge.smpp.esme import Esme
from bridge.smpp.pdu import Pdu
from bridge.smpp.session import NoTimeLeft, RequestHandler
from bridge.smpp.stats import BindReport, BindStats
from bridge.smpp.throttle import ThrottlePause, TokenBucket
from bridge.transports.smpp_config import SmppConfig


class SmppBind:
    """One bind (or bind pair) to the SMSC."""

    def __init__(
        self,
        config: SmppConfig,
        name: str,
        handler: RequestHandler,
        stats: BindStats,
        smsc_bucket: TokenBucket,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.window = config.window
        pair = config.bind_type == "pair"
        tx_type = "transmitter" if pair else config.bind_type
        self.tx = Esme(config.esme_settings(tx_type), handler, name=name, rng=rng)
        self.rx = (
            Esme(config.esme_settings("receiver"), handler, name=f"{name}/rx", rng=rng)
            if pair
            else None
        )
        self.can_submit = tx_type != "receiver"
        self.stats = stats
        self.bucket = TokenBucket(config.rate, config.burst)
        self.smsc_bucket = smsc_bucket
        self.pause = ThrottlePause(config.throttle_pause_min, config.throttle_pause_max)

    @property
    def bound(self) -> bool:
        return self.tx.bound

    @property
    def last_error(self) -> str:
        return self.tx.last_error

    def state(self, now: float) -> str:
        if not self.tx.bound:
            return "down"
        return "paused" if self.pause.remaining(now) > 0 else "bound"

    def report(self, now: float) -> BindReport:
        return self.stats.snapshot(self.name, self.state(now), self.window, now, self.last_error)

    async def start(self) -> None:
        await self.tx.start()
        if self.rx is not None:
            await self.rx.start()

    async def stop(self) -> None:
        await self.tx.stop()
        if self.rx is not None:
            await self.rx.stop()

    async def wait_bound(self, within: float) -> bool:
        return await self.tx.wait_bound(within)

    def reserve(self, count: int, send_by: float = math.inf) -> tuple[float, ...]:
        """Take the tokens of a message's `count` parts at once: the loop time from which
        each part may go (`send`'s `at`). All or none: when the last part could go only
        after `send_by` (its rate, the bind's pause), none is taken and NoTimeLeft says
        so. A message is not started that its rate would stop halfway: sent again later
        from its first part, the phone would get its early parts twice."""
        now = asyncio.get_running_loop().time()
        marks = self.bucket.taken_at(), self.smsc_bucket.taken_at()
        times = tuple(
            now + max(self.bucket.reserve(now), self.smsc_bucket.reserve(now)) for _ in range(count)
        )
        last = max(now + self.pause.remaining(now), *times)
        if last > send_by:
            self.bucket.restore(marks[0])
            self.smsc_bucket.restore(marks[1])
            which = f"the last of {count} parts" if count > 1 else "the SMS"
            raise NoTimeLeft(
                f"{self.name}: {which} could go in {last - now:.1f} s (rate, pause), "
                "past the send-by time"
            )
        return times

    async def send(self, pdu: Pdu, send_by: float = math.inf, at: float | None = None) -> Pdu:
        """Send one request when pause, rate and window allow; its response. `at`: the
        request's token was taken by `reserve` (usable from that loop time); None: one is
        taken now.

        Nothing is sent after `send_by` (loop time): a pause, a token or a window slot
        that comes later raises NoTimeLeft instead of being waited for."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        paused = self.pause.remaining(now)
        if paused > 0:  # a throttling answer elsewhere paused this bind: wait it out first
            if now + paused > send_by:
                raise NoTimeLeft(f"{self.name}: paused {paused:.1f} s, past the send-by time")
            await asyncio.sleep(paused)
            now = loop.time()
        if at is not None:
            delay = at - now
        else:
            if send_by != math.inf:  # a token that comes too late is not taken from the buckets
                late = max(self.bucket.wait(now), self.smsc_bucket.wait(now))
                if now + late > send_by:
                    raise NoTimeLeft(
                        f"{self.name}: next token in {late:.1f} s, past the send-by time"
                    )
            delay = max(self.bucket.reserve(now), self.smsc_bucket.reserve(now))
        if delay > 0:
            await asyncio.sleep(delay)
        self.stats.in_flight += 1
        try:
            return await self.tx.request(pdu, send_by=None if send_by == math.inf else send_by)
        finally:
            self.stats.in_flight -= 1
