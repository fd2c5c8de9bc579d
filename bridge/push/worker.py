"""The push worker: claim due pushes, send each over HTTP (guarded, pinned, signed), record it.

2xx is success. 5xx, 408, 429, timeouts and connection errors are retried with backoff
until the push's `give_up_at`; a 3xx (redirects are never followed), another 4xx or a
URL the SSRF guard refuses fails at once. A push that fails for good queues a
`push_failed` notice to the customer's admin (else postmaster). The response body is
read only up to a small cap and never shown to anyone.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass

import httpx

from bridge.db.clock import utcnow
from bridge.db.store import Store
from bridge.metrics import Metrics
from bridge.push import queue as push_sql
from bridge.push.body import sign
from bridge.push.delivery_status import PushStatus
from bridge.push.guard import PushBlocked, vet
from bridge.push.settings import PushSettings
from bridge.push.target import PushAction
from bridge.retry import next_attempt

log = logging.getLogger("bridge.push")
_RETRY_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class PushOutcome:
    ok: bool
    retry: bool
    detail: str


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

    async def step(self) -> int:
        claimed = await self.store.call(
            push_sql.claim_pushes, utcnow(), self.settings.concurrency, self.settings.timeout * 3
        )
        if claimed:
            await asyncio.gather(*(self._one(p) for p in claimed))
        return len(claimed)

    async def _one(self, work: push_sql.PushWork) -> None:
        action = PushAction.model_validate(work.target)
        try:
            outcome = await self.send(action, work.body.encode(), work.content_type)
        except Exception as exc:  # an unexpected error must not lose the push: retry it
            outcome = PushOutcome(False, True, f"unexpected error: {exc!r}")
        now = utcnow()
        if outcome.ok:
            log.info("push %s to %s: %s", work.id, action.url, outcome.detail)
            await self.store.call(
                push_sql.record_push, work.id, now, PushStatus.SENT, outcome.detail
            )
            self.metrics.push_deliveries.labels(PushStatus.SENT).inc()
            return
        next_at = None
        if outcome.retry:
            next_at = next_attempt(
                work.created_at,
                now,
                minimum=self.settings.retry_min,
                maximum=self.settings.retry_max,
                lifetime=(work.give_up_at - work.created_at).total_seconds(),
            )
        if next_at is not None:
            log.warning("push %s to %s deferred: %s", work.id, action.url, outcome.detail)
            await self.store.call(
                push_sql.record_push, work.id, now, PushStatus.DEFERRED, outcome.detail, next_at
            )
            self.metrics.push_deliveries.labels(PushStatus.DEFERRED).inc()
            return
        log.error("push %s to %s failed: %s", work.id, action.url, outcome.detail)
        await self.store.call(
            push_sql.fail_push,
            work.id,
            now,
            outcome.detail,
            action.url,
            self.fallback_admin,
            self.contacts,
        )
        self.metrics.push_deliveries.labels(PushStatus.FAILED).inc()
        if callable(self._on_notice):
            self._on_notice()

    async def send(self, action: PushAction, body: bytes, content_type: str) -> PushOutcome:
        """One HTTP attempt; never raises for network or HTTP errors."""
        s = self.settings
        try:
            target = await vet(action.url, allow_hosts=s.allow_hosts, allow_http=s.allow_http)
        except PushBlocked as exc:
            return PushOutcome(False, False, f"refused by the SSRF guard: {exc}")
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
        try:
            async with httpx.AsyncClient(
                timeout=s.timeout, follow_redirects=False, transport=self._transport
            ) as client:
                request = client.build_request(
                    action.method, url, content=body, headers=headers, extensions=extensions
                )
                response = await client.send(request, stream=True)
                try:
                    await _drain(response, s.max_response_bytes)
                finally:
                    await response.aclose()
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            return PushOutcome(False, True, f"{type(exc).__name__}: {exc}")
        code = response.status_code
        if 200 <= code < 300:
            return PushOutcome(True, False, f"HTTP {code}")
        if 300 <= code < 400:
            return PushOutcome(False, False, f"HTTP {code}: redirects are not followed")
        return PushOutcome(False, code >= 500 or code in _RETRY_STATUSES, f"HTTP {code}")


async def _drain(response: httpx.Response, limit: int) -> None:
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read >= limit:
            break
