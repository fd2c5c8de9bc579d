"""The push worker: claim due pushes, send each over HTTP (guarded, pinned, signed), record it.

A 2xx status line is success. 5xx, 408, 425, 429, timeouts, connection errors and a
name lookup the resolver could not answer are retried with backoff (never sooner than
the receiver's `Retry-After`) until the push's `give_up_at`; a 3xx (redirects are never
followed), another 4xx, a host the DNS says does not exist or a URL the SSRF guard
refuses fails at once. A claim leases its pushes for LEASE_TIMEOUTS x `timeout`, from a
time read before it; an attempt starts only while its `timeout` fits in the lease less
one `timeout` to record it, and ends within `timeout`, so no other worker sends it a
second time — however long the claim waited for the database (a push claimed too late
is left to its lease's end and claimed again then). A push that fails for good
queues a `push_failed` notice to the customer's admin (else postmaster). The response
body is read only up to a small cap and never shown to anyone.

A receiver's connections are kept open for its next push, `keepalive` seconds (an httpx
client per receiver: the URL's scheme, the vetted address, the port and the host name,
so a connection made for one name, its certificate checked for that name and sent in
SNI, never carries another name's push). A kept connection the receiver closed as the
push went out (its own idle timeout) has not answered: that push is sent once more at
once, over a new connection, as browsers do; so is one whose answer was waiting on the
kept connection before it went out (a receiver that answered an earlier push twice),
which is never taken for its answer. Any other failure waits for the backoff.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import logging
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from pydantic import ValidationError

from bridge.db.clock import utcnow
from bridge.db.store import Store
from bridge.metrics import Metrics
from bridge.push import queue as push_sql
from bridge.push.body import sign
from bridge.push.delivery_status import PushStatus
from bridge.push.guard import PushBlocked, Vetted, vet
from bridge.push.settings import PushSettings
from bridge.push.target import PushAction
from bridge.retry import next_attempt

log = logging.getLogger("bridge.push")
_RETRY_STATUSES = frozenset({408, 425, 429})
_RETRY_AFTER_MAX = 30 * 86_400.0  # a Retry-After further out is read as this
MAX_KEPT = 64  # receivers whose connections are kept at once (the least recently used go)
# A claim's lease in `timeout`s: one for the claim to wait for the database, one for the
# attempt, one to record it.
LEASE_TIMEOUTS = 3
VETTED_FOR = 30.0  # seconds a URL's vetted address is used without a new name lookup
# What a kept connection the receiver closed under a push raises before any answer.
_STALE = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
_Key = tuple[str, str, int, str]  # scheme, vetted address, port, the URL's host name


@dataclass(slots=True)
class _Kept:
    """One receiver's kept connections (an httpx client and its pool)."""

    client: httpx.AsyncClient
    busy: int = 0  # pushes under way over it
    last_used: float = 0.0  # the event loop's clock


@dataclass(frozen=True, slots=True)
class PushOutcome:
    ok: bool
    retry: bool
    detail: str
    wait: float | None = None  # the receiver's Retry-After, in seconds


class Pusher:
    def __init__(
        self,
        settings: PushSettings,
        store: Store,
        contacts: push_sql.Contacts,
        fallback_admin: str = "",
        on_notice: object = None,
        transport: httpx.AsyncBaseTransport | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics.unregistered()
        self.store = store
        self.fallback_admin = fallback_admin
        self.contacts = contacts  # whom a push given up on is reported to
        self._on_notice = on_notice
        self._transport = transport
        # One TLS context for every push: building one (the CA bundle read and parsed)
        # costs ~25 ms of the event loop, which a client per push paid each time.
        self._tls = ssl.create_default_context()
        self._kept: dict[_Key, _Kept] = {}
        # a URL's vetted target and when it was vetted (loop clock): the name is looked
        # up again after VETTED_FOR seconds, not for every push
        self._vetted: dict[str, tuple[Vetted, float]] = {}

    async def close(self) -> None:
        """Close every kept connection (the bridge is stopping)."""
        kept, self._kept = self._kept, {}
        for k in kept.values():
            await k.client.aclose()

    async def _sweep(self) -> None:
        """Close the connections of receivers idle for `keepalive` seconds, and of the
        least recently used idle ones beyond MAX_KEPT."""
        now = asyncio.get_running_loop().time()
        idle = sorted((k.last_used, key) for key, k in self._kept.items() if not k.busy)
        over = len(self._kept) - MAX_KEPT
        for i, (last_used, key) in enumerate(idle):
            if i < over or now - last_used >= self.settings.keepalive:
                await self._kept.pop(key).client.aclose()

    def _client(self, key: _Key) -> _Kept:
        kept = self._kept.get(key)
        if kept is None:
            kept = self._kept[key] = _Kept(self._new_client(self.settings.keepalive))
        return kept

    def _new_client(self, keepalive: float) -> httpx.AsyncClient:
        limits = httpx.Limits(
            max_connections=None,  # at most `concurrency`: the pushes under way
            max_keepalive_connections=self.settings.concurrency if keepalive else 0,
            keepalive_expiry=keepalive,
        )
        return httpx.AsyncClient(
            timeout=self.settings.timeout,
            follow_redirects=False,
            transport=self._transport,
            verify=self._tls,
            limits=limits,
        )

    async def _vet(self, url: str) -> Vetted:
        """`url`'s target as the SSRF guard vetted it, looked up again after VETTED_FOR
        seconds (or after a failed connection to it): a lookup per push cost a thread hop
        and a DNS query each, and a resolver's hiccup deferred pushes to a receiver
        already connected. Only what the guard passed is kept, so a name that later
        resolves to a refused address is refused at its next lookup, and until then the
        vetted address is used."""
        now = asyncio.get_running_loop().time()
        found = self._vetted.get(url)
        if found is not None and now - found[1] < VETTED_FOR:
            return found[0]
        s = self.settings
        target = await vet(url, allow_hosts=s.allow_hosts, allow_http=s.allow_http)
        if len(self._vetted) >= MAX_KEPT:  # the oldest lookup goes
            del self._vetted[min(self._vetted, key=lambda u: self._vetted[u][1])]
        self._vetted[url] = (target, now)
        return target

    async def step(self) -> int:
        await self._sweep()
        timeout = self.settings.timeout
        # Read before the claim, so no later than its lease's start in the database: an
        # attempt starts only while it ends by `until`, one `timeout` before the lease does.
        until = asyncio.get_running_loop().time() + (LEASE_TIMEOUTS - 1) * timeout
        claimed = await self.store.call(
            push_sql.claim_pushes, utcnow(), self.settings.concurrency, LEASE_TIMEOUTS * timeout
        )
        if claimed:
            await asyncio.gather(*(self._one(p, until) for p in claimed))
        return len(claimed)

    async def _one(self, work: push_sql.PushWork, until: float) -> None:
        """Send `work` and record how it went, if its attempt ends by `until` (loop
        time); else leave it alone: its lease runs out and it is claimed again (another
        worker may have claimed it already)."""
        late = asyncio.get_running_loop().time() + self.settings.timeout - until
        if late > 0:
            log.warning(
                "push %s not sent: claimed %.1f s too late for an attempt of [push] timeout = "
                "%g s within its lease (the database was slow); sent once the lease ends",
                work.id,
                late,
                self.settings.timeout,
            )
            return
        try:
            action = PushAction.model_validate(work.target)
        except ValidationError as exc:  # stored before its checks were as strict as now
            url = str(work.target.get("url", ""))
            await self._give_up(work, url, f"the push target is not valid: {exc}")
            return
        try:
            outcome = await self.send(action, work.body.encode(), work.content_type, until)
        except Exception as exc:  # an unexpected error must not lose the push: retry it
            outcome = PushOutcome(False, True, f"unexpected error: {exc!r}")
        now = utcnow()
        if outcome.ok:
            log.info("push %s to %s: %s", work.id, action.url, outcome.detail)
            record = push_sql.PushRecord(work.id, now, PushStatus.SENT, outcome.detail)
            await self.store.grouped(push_sql.record_pushes, record)
            self.metrics.push_deliveries.labels(PushStatus.SENT).inc()
            return
        next_at = None
        if outcome.retry:
            wait = outcome.wait or 0.0  # a Retry-After is honoured up to the give-up time
            next_at = next_attempt(
                work.created_at,
                now,
                minimum=max(self.settings.retry_min, wait),
                maximum=max(self.settings.retry_max, wait),
                lifetime=(work.give_up_at - work.created_at).total_seconds(),
            )
        if next_at is not None:
            log.warning("push %s to %s deferred: %s", work.id, action.url, outcome.detail)
            record = push_sql.PushRecord(work.id, now, PushStatus.DEFERRED, outcome.detail, next_at)
            await self.store.grouped(push_sql.record_pushes, record)
            self.metrics.push_deliveries.labels(PushStatus.DEFERRED).inc()
            return
        await self._give_up(work, action.url, outcome.detail)

    async def _give_up(self, work: push_sql.PushWork, url: str, detail: str) -> None:
        log.error("push %s to %s failed: %s", work.id, url, detail)
        await self.store.call(
            push_sql.fail_push,
            work.id,
            utcnow(),
            detail,
            url,
            self.fallback_admin,
            self.contacts,
        )
        self.metrics.push_deliveries.labels(PushStatus.FAILED).inc()
        if callable(self._on_notice):
            self._on_notice()

    async def send(
        self, action: PushAction, body: bytes, content_type: str, until: float | None = None
    ) -> PushOutcome:
        """One HTTP attempt, ended by `until` (loop time) too; never raises for network or
        HTTP errors.

        The name lookup, the connection, the request and the answer's status line and
        headers have `timeout` seconds together, however slowly the receiver dribbles
        them (a per-read timeout alone would let an attempt outlive its claim's lease and
        be sent twice). The status decides: once it is 2xx the push is delivered, whatever
        the body does after it; the body is read, up to `max_response_bytes`, only within
        what is left of the time."""
        s = self.settings
        loop = asyncio.get_running_loop()
        deadline = loop.time() + s.timeout
        if until is not None:
            deadline = min(deadline, until)
        try:
            async with asyncio.timeout_at(deadline):
                target = await self._vet(action.url)
        except PushBlocked as exc:
            return PushOutcome(False, False, f"refused by the SSRF guard: {exc}")
        except TimeoutError:
            return PushOutcome(False, True, f"the name lookup took over {s.timeout:g} s")
        except OSError as exc:
            return PushOutcome(False, True, f"the name lookup failed: {exc}")
        host_ip = f"[{target.address}]" if ":" in target.address else target.address
        url = f"{target.scheme}://{host_ip}:{target.port}{target.path}"
        default_port = 443 if target.scheme == "https" else 80
        headers = {
            **action.headers,
            "Host": target.host if target.port == default_port else f"{target.host}:{target.port}",
            "Content-Type": content_type,
            "User-Agent": "mailsms-push/1",
        }
        if action.auth == "basic":
            pair = f"{action.username}:{action.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        elif action.auth == "bearer":
            headers["Authorization"] = f"Bearer {action.token}"
        elif action.auth == "hmac":
            headers[action.signature_header] = sign(action.secret, int(time.time()), body)
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        kept = self._client((target.scheme, target.address, target.port, target.host))
        kept.busy += 1
        async with contextlib.AsyncExitStack() as stack:
            try:
                request = kept.client.build_request(
                    action.method, url, content=body, headers=headers, extensions=extensions
                )
                try:
                    response, new = await _send(kept.client, request, deadline)
                except _Stale:  # the receiver closed a kept connection as the push went out
                    self.metrics.push_connections.labels("ended_by_receiver").inc()
                    once = await stack.enter_async_context(self._new_client(0))
                    response, new = await _send(once, request, deadline)
                self.metrics.push_connections.labels("opened" if new else "reused").inc()
                stack.push_async_callback(response.aclose)
                with contextlib.suppress(TimeoutError, httpx.HTTPError):
                    async with asyncio.timeout_at(deadline):
                        await _drain(response, s.max_response_bytes)
            except TimeoutError:
                self._vetted.pop(action.url, None)  # the next attempt looks the name up again
                return PushOutcome(False, True, f"no answer within {s.timeout:g} s")
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                self._vetted.pop(action.url, None)
                return PushOutcome(False, True, f"{type(exc).__name__}: {exc}")
            finally:
                kept.busy -= 1
                kept.last_used = loop.time()
        return _outcome(response, utcnow())


class _Stale(Exception):
    """A request over a kept connection that failed before any answer, or whose answer
    was there before it was asked (left over from the receiver's previous answer)."""


async def _send(
    client: httpx.AsyncClient, request: httpx.Request, deadline: float
) -> tuple[httpx.Response, bool]:
    """The answer's status line and headers by `deadline`, and whether they came over a
    new connection; _Stale when the request went over a connection made before it (no
    connect in its trace) and that connection failed before answering or gave an answer
    it had before it was asked.

    Before it was asked: a receiver that answered a request twice (or wrote more than
    its answer's length) leaves bytes on a kept connection that the next request would
    read as its answer — a 200 for a push it answers 503. Every read of a new answer
    waits on the network, so the event loop turns at least once between the start and
    the end of reading the status line and headers; an answer read without a turn came
    from the buffers and is refused (raised from the trace, so httpcore closes that
    connection)."""
    loop = asyncio.get_running_loop()
    connected = turned = False

    def turn() -> None:
        nonlocal turned
        turned = True

    async def trace(event: str, info: dict[str, Any]) -> None:
        nonlocal connected, turned
        if event.startswith("connection.connect_tcp."):
            connected = True
        elif event == "http11.receive_response_headers.started":
            turned = False
            loop.call_soon(turn)
        elif event == "http11.receive_response_headers.complete" and not turned:
            raise _Stale("an answer read from the buffers")

    request.extensions["trace"] = trace
    try:
        async with asyncio.timeout_at(deadline):
            return await client.send(request, stream=True), connected
    except _STALE as exc:  # the connection failed before any answer
        if connected:
            raise
        raise _Stale from exc
    except _Stale:  # raised from the trace
        if connected:  # a new connection holds nothing from before: the receiver spoke first
            raise httpx.RemoteProtocolError("the receiver answered before it was asked") from None
        raise


def _outcome(response: httpx.Response, now: datetime) -> PushOutcome:
    """What an answer's status line means for the push."""
    code = response.status_code
    if 200 <= code < 300:
        return PushOutcome(True, False, f"HTTP {code}")
    if 300 <= code < 400:
        return PushOutcome(False, False, f"HTTP {code}: redirects are not followed")
    if code >= 500 or code in _RETRY_STATUSES:
        wait = retry_after(response.headers.get("Retry-After", ""), now)
        if wait is not None:
            return PushOutcome(False, True, f"HTTP {code}, asked to wait {wait:g} s", wait)
        return PushOutcome(False, True, f"HTTP {code}")
    return PushOutcome(False, False, f"HTTP {code}")


def retry_after(value: str, now: datetime) -> float | None:
    """The seconds a `Retry-After` header asks for (RFC 9110 10.2.3: seconds or an
    HTTP-date), or None when it is absent or unreadable."""
    value = value.strip()
    if not value or len(value) > 64:
        return None
    if value.isascii() and value.isdigit():
        return float(min(int(value), _RETRY_AFTER_MAX))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    seconds = (when - now).total_seconds()
    return max(0.0, min(float(round(seconds)), _RETRY_AFTER_MAX))


async def _drain(response: httpx.Response, limit: int) -> None:
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read >= limit:
            break
