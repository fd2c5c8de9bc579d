"""`/healthz` (the event loop answers) and `/readyz` (can this instance take and send mail?).

Readiness is a list of named checks (`Check`), each an async callable saying what is
wrong or None; `bridge/app.py` builds them from its components (the database, the SMSC
binds, the SMTP listener, the queues). `/readyz` runs them all, each with a timeout,
and answers 200 when every check passes, else 503; the JSON body names every check and
what failed, so a load balancer takes the instance out and an operator sees why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Probe = Callable[[], Awaitable[str | None]]  # what is wrong, or None


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness check: its name and its probe."""

    name: str
    probe: Probe


async def _run(check: Check, within: float) -> str | None:
    try:
        return await asyncio.wait_for(check.probe(), within)
    except TimeoutError:
        return f"no answer within {within:g} s"
    except Exception as exc:  # a failing probe is a failed check, not a 500
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


async def readiness(checks: Sequence[Check], within: float) -> tuple[bool, dict[str, object]]:
    """Run every check (at once, each for at most `within` s); all passed?, and the body."""
    results = await asyncio.gather(*(_run(c, within) for c in checks))
    body: dict[str, object] = {
        c.name: ({"ok": True} if why is None else {"ok": False, "error": why})
        for c, why in zip(checks, results, strict=True)
    }
    failed = [c.name for c, why in zip(checks, results, strict=True) if why is not None]
    status = "ready" if not failed else "not ready"
    return not failed, {"status": status, "failed": failed, "checks": body}


def health_routes(checks: Sequence[Check], timeout: float) -> list[Route]:
    """GET /healthz and GET /readyz."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ok, body = await readiness(checks, timeout)
        return JSONResponse(body, status_code=200 if ok else 503)

    return [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
    ]
