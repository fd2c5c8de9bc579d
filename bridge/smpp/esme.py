"""ESME client: connect, bind, keep the bind alive (enquire_link) and reconnect with backoff.

`Esme.start()` runs a background loop: connect -> bind -> serve until the connection
ends -> wait (capped exponential backoff with jitter) -> again. The backoff grows over
attempts that did not get a working bind: after a bind that worked (the SMSC answered a
request on it, or it lasted `enquire_link_interval`) it starts from the beginning, so
a short SMSC restart costs `reconnect_min`, not the cap; a bind the SMSC accepts and
drops at once (over its bind limit, a balancer with a dead backend) counts as a failed
attempt, not as a reason to bind again every `reconnect_min`. A refused bind (wrong
password, unknown system_id) is logged clearly and retried slowly. `request()` sends a
PDU on the current bound session or raises `NotBound` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import ssl
from dataclasses import dataclass
from typing import Final

from bridge.errors import TemporaryFailure
from bridge.smpp import constants as c
from bridge.smpp.pdu import Bind, BindResp, EnquireLink, GenericNack, Pdu
from bridge.smpp.session import RequestHandler, SessionError, SmppSession

log: Final = logging.getLogger(__name__)

BIND_TYPES: Final[dict[str, int]] = {
    "transceiver": c.BIND_TRANSCEIVER,
    "transmitter": c.BIND_TRANSMITTER,
    "receiver": c.BIND_RECEIVER,
}


class Outcome(enum.Enum):
    """How one connection attempt ended."""

    FAILED = "failed"  # no connection, or no answer to the bind
    REFUSED = "refused"  # the SMSC refused the bind
    DROPPED = "dropped"  # bound, then dropped before the bind did anything
    BOUND = "bound"  # bound and working, then the connection ended


class NotBound(TemporaryFailure):
    """There is no bound session right now (the reason says why, e.g. the last bind error)."""


@dataclass(frozen=True, slots=True)
class EsmeSettings:
    """Everything the ESME needs to reach and bind to one SMSC."""

    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    bind_type: str = "transceiver"  # transceiver | transmitter | receiver
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""
    window: int = 10
    response_timeout: float = 30.0
    connect_timeout: float = 10.0
    enquire_link_interval: float = 30.0
    enquire_link_timeout: float = 10.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    bind_failure_min: float = 10.0  # first wait after a refused bind: do not hammer the SMSC
    tls: bool = False
    tls_verify: bool = True
    tls_ca_file: str = ""  # CA bundle for the SMSC's certificate ("" = the system's)


def backoff_delay(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Capped exponential backoff with jitter: within [d/2, d], d = min(high, low * 2**attempt)."""
    ceiling = min(high, low * float(1 << min(attempt, 30)))
    return ceiling * (0.5 + rng.random() / 2)


class Esme:
    """A self-healing bind to one SMSC."""

    def __init__(
        self,
        settings: EsmeSettings,
        handler: RequestHandler,
        *,
        name: str = "smpp",
        rng: random.Random | None = None,
    ) -> None:
        if settings.bind_type not in BIND_TYPES:
            raise ValueError(f"bind_type must be one of {sorted(BIND_TYPES)}")
        self.settings = settings
        self.name = name
        self._handler = handler
        self._rng = rng or random.Random()
        self._session: SmppSession | None = None
        self._bound = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last_error = "not connected yet"
        self.binds = 0  # how many times we got bound (tests and metrics)

    # --- public -----------------------------------------------------------------------------

    @property
    def bound(self) -> bool:
        return self._session is not None and not self._session.closed and self._bound.is_set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"esme-{self.name}")

    async def wait_bound(self, within: float) -> bool:
        """True once bound (within `within` seconds)."""
        if self.bound:
            return True
        try:
            await asyncio.wait_for(self._bound.wait(), within)
        except TimeoutError:
            return False
        return self.bound

    async def request(
        self, pdu: Pdu, *, response_timeout: float | None = None, send_by: float | None = None
    ) -> Pdu:
        """Send on the bound session; NotBound when there is none, SessionError on loss
        (NoTimeLeft when no window slot is free by `send_by`)."""
        session = self._session
        if session is None or session.closed or not self._bound.is_set():
            raise NotBound(f"{self.name}: not bound ({self.last_error})")
        return await session.request(pdu, response_timeout=response_timeout, send_by=send_by)

    async def stop(self, grace: float = 5.0) -> None:
        """Unbind cleanly and end the loop: the deliver_sm being handled get their answers
        (at most `grace` seconds: an MO stored but not answered would come again), then
        `unbind` (short wait for unbind_resp), then the connection closes."""
        self._stopping.set()
        session = self._session
        if session is not None and not session.closed and self._bound.is_set():
            self._bound.clear()
            await session.drain(grace)
            await session.unbind()
            await session.drain(grace)  # a deliver_sm that crossed our unbind
        if session is not None:
            await session.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # --- the loop ---------------------------------------------------------------------------

    async def _sleep(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    async def _run(self) -> None:
        attempt = 0  # connection attempts since the last bind that worked
        while not self._stopping.is_set():
            outcome = Outcome.FAILED
            try:
                outcome = await self._connect_and_serve()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let the loop die
                self.last_error = f"unexpected error: {exc!r}"
                log.exception("%s: ESME loop error", self.name)
            finally:
                self._bound.clear()
                session, self._session = self._session, None
                if session is not None:
                    await session.close()
            if self._stopping.is_set():
                break
            if outcome is Outcome.BOUND:
                attempt = 0  # the bind worked: a blip is not a reason to wait long
            s = self.settings
            if outcome is Outcome.REFUSED:  # wrong credentials will not fix themselves soon
                low = max(s.bind_failure_min, s.reconnect_min)
                delay = backoff_delay(attempt, low, max(low, s.reconnect_max), self._rng)
            else:
                delay = backoff_delay(attempt, s.reconnect_min, s.reconnect_max, self._rng)
            attempt += 1
            log.info("%s: reconnecting in %.1f s (%s)", self.name, delay, self.last_error)
            await self._sleep(delay)

    async def _connect_and_serve(self) -> Outcome:
        """One connection's life, and how it ended."""
        s = self.settings
        ctx: ssl.SSLContext | None = None
        if s.tls:
            ctx = ssl.create_default_context(cafile=s.tls_ca_file or None)
            if not s.tls_verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(s.host, s.port, ssl=ctx), s.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            self.last_error = f"cannot connect to {s.host}:{s.port}: {exc or 'timeout'}"
            log.warning("%s: %s", self.name, self.last_error)
            return Outcome.FAILED
        session = SmppSession(
            reader,
            writer,
            self._handler,
            window=s.window,
            response_timeout=s.response_timeout,
            name=self.name,
            on_close=self._bound.clear,
        )
        self._session = session
        reader_task = asyncio.create_task(session.run())
        try:
            bind = Bind(
                BIND_TYPES[s.bind_type],
                0,
                s.system_id,
                s.password,
                s.system_type,
                addr_ton=s.addr_ton,
                addr_npi=s.addr_npi,
                address_range=s.address_range,
            )
            try:
                resp = await session.request(bind, use_window=False)
            except SessionError as exc:
                self.last_error = f"bind got no answer: {exc}"
                log.warning("%s: %s", self.name, self.last_error)
                return Outcome.FAILED
            if not isinstance(resp, BindResp | GenericNack) or resp.status != c.ESME_ROK:
                status = resp.status if resp.status else c.ESME_RBINDFAIL
                hint = " - check system_id/password" if status in c.CREDENTIAL_STATUSES else ""
                self.last_error = f"bind refused: {c.status_name(status)}{hint}"
                log.error(
                    "%s: %s as %r at %s:%d", self.name, self.last_error, s.system_id, s.host, s.port
                )
                return Outcome.REFUSED
            self.binds += 1
            self.last_error = "connection lost"
            self._bound.set()
            log.info("%s: bound to %s:%d as %r", self.name, s.host, s.port, s.system_id)
            clock = asyncio.get_running_loop().time
            bound_at, answered = clock(), session.answered
            keepalive = asyncio.create_task(self._keepalive(session))
            try:
                await session.wait_closed()
            finally:
                keepalive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keepalive
            self.last_error = f"connection lost: {session.close_reason}"
            if not self._stopping.is_set():
                log.warning("%s: %s", self.name, self.last_error)
            worked = session.answered > answered or clock() - bound_at >= s.enquire_link_interval
            return Outcome.BOUND if worked else Outcome.DROPPED
        finally:
            reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader_task

    async def _keepalive(self, session: SmppSession) -> None:
        s = self.settings
        while not session.closed:
            await asyncio.sleep(s.enquire_link_interval)
            try:
                await session.request(
                    EnquireLink(0), response_timeout=s.enquire_link_timeout, use_window=False
                )
            except SessionError as exc:
                log.warning("%s: enquire_link failed (%s); reconnecting", self.name, exc)
                session.abort("enquire_link unanswered")
                return
