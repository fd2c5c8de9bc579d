"""Every portal route, with odd ids and query values, as a customer admin and an operator:
always a page (2xx, 3xx or 4xx with a sentence), never a 500 or a traceback; on SQLite and
on PostgreSQL, which refuses a NUL in text (a filter with one was a 503 there).

The routes come from the portal itself, so a page added later is tried too.
"""

from __future__ import annotations

import re
from pathlib import Path

from starlette.routing import Route

from bridge.portal.web import Portal
from tests.portal.harness import login, portal

ODD_IDS = ("99999999999999999999999", "-1", "0", "abc", "1.5", "%2e%2e", "%00", "x" * 300)
ODD_QUERY = {
    "page": "99999999999999999999999",
    "after": "99999999999999999999999",
    "before": "-5",
    "since": "2026-13-45",
    "until": "0001-01-01T00:00:00+14:00",
    "day": "9999-12-31",
    "from": "9" * 300,
    "to": "<script>",
    "status": "nonsense",
    "user": "%",
    "q": "'\"; --",
    "period": "-1",
    "days": "999999999",
    "customer": "",
    "cost_centre": "4711\x00",  # PostgreSQL cannot compare or store a NUL
    "name": "a\x1bb",
}


async def test_no_route_answers_500_to_odd_ids_or_queries(
    tmp_path: Path, bridge_database: str
) -> None:
    async with (
        portal(tmp_path, database_url=bridge_database) as run,
        run.client() as admin,
        run.client() as ops,
    ):
        assert run.bridge.store is not None
        routes = [
            r
            for r in Portal(run.bridge.store, run.settings.portal, https=False).routes()
            if isinstance(r, Route) and "/static/" not in r.path and not r.path.endswith("login")
        ]
        assert len(routes) > 30  # every page module's routes are here
        tokens = {"admin": await login(admin, "acme-admin"), "ops": await login(ops, "ops")}
        tried = 0
        for route in routes:
            params = re.findall(r"{([a-z_]+)(?::[a-z]+)?}", route.path)
            for value in ODD_IDS if params else ("",):
                path = re.sub(r"{[a-z_]+(?::[a-z]+)?}", value, route.path)
                for name, web in (("admin", admin), ("ops", ops)):
                    for method in sorted(route.methods or ()):
                        if method == "HEAD" or path.endswith("/logout"):
                            continue
                        if method == "GET":
                            r = await web.get(path, params=ODD_QUERY)
                        else:
                            r = await web.post(
                                path, data={"csrf": tokens[name], **ODD_QUERY, "id": value}
                            )
                        tried += 1
                        assert r.status_code < 500, (name, method, path, r.text[-500:])
                        assert "Traceback" not in r.text, (name, method, path)
        assert tried > 200
