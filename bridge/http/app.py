"""The HTTP application: one Starlette app built from the routes the bridge mounts.

`bridge/app.py` hands over the routes (health, readiness, metrics today; the REST API
and the portal join the same list). An unknown path is a 404 with a JSON body, an
error inside a route a 500 with a JSON body, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

log = logging.getLogger("bridge.http")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("GET %s failed: %s: %s", request.url.path, type(exc).__name__, exc)
    return JSONResponse({"error": "internal error, see the bridge's log"}, status_code=500)


def build_app(routes: Sequence[BaseRoute]) -> Starlette:
    """The ASGI app serving `routes`."""
    return Starlette(
        routes=list(routes),
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
