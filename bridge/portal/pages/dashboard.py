"""The dashboard: the portal's start page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.portal.base import PREFIX, Pages
from bridge.portal.viewer import Viewer


def routes(pages: Pages) -> list[BaseRoute]:
    async def dashboard(request: Request, viewer: Viewer) -> Response:
        return pages.render(request, viewer, "dashboard.html")

    return [Route(f"{PREFIX}/", pages.page(dashboard), methods=["GET"])]
