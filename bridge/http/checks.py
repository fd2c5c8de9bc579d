"""The readiness checks of a running bridge: database, SMSC binds, SMTP listener, queues.

Each builder takes the component it looks at and gives a `Check` for `/readyz`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from sqlalchemy import Connection, text

from bridge.db.store import Store
from bridge.http.health import Check
from bridge.intake.backpressure import Backpressure
from bridge.transports.smpp import SmppTransport


def _select_one(conn: Connection) -> int:
    return int(conn.execute(text("SELECT 1")).scalar_one())


def database(store: Store) -> Check:
    """The database answers a trivial query (the timeout is the caller's)."""

    async def probe() -> str | None:
        await store.call(_select_one)
        return None

    return Check("database", probe)


def smsc(transports: Mapping[str, SmppTransport]) -> Check:
    """At least one bind of one SMSC (the sandbox counts) is bound."""

    async def probe() -> str | None:
        if any(t.bound for t in transports.values()):
            return None
        down = "; ".join(f"{n}: {t.last_error or 'not bound'}" for n, t in transports.items())
        return f"no SMSC bind is up ({down})" if down else "no SMSC is configured"

    return Check("smsc", probe)


def smtp(server: Callable[[], asyncio.Server | None], stopping: Callable[[], bool]) -> Check:
    """The SMTP listener is open and not shutting down."""

    async def probe() -> str | None:
        listener = server()
        if listener is None or not listener.is_serving():
            return "the SMTP listener is not open"
        if stopping():
            return "the bridge is stopping (new sessions get 421)"
        return None

    return Check("smtp", probe)


def queues(backpressure: Backpressure) -> Check:
    """The order queue is below its high-water mark and the disk has room (else MAIL gets 452)."""

    async def probe() -> str | None:
        return backpressure.reason()

    return Check("queues", probe)
