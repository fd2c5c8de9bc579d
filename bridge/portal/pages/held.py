"""Held orders: the orders the SMS pumping check (or an unexpected error) held, with release,
retry and refuse, as `mailsms held list|release|refuse` and `mailsms orders retry`.

Scoped like every page: a customer admin sees and decides its own customer's held orders
only; an order id of another customer (or one no longer held) answers 404. Release
queues an order now whatever held it; retry is for orders held after an error (an order
held by the SMS pumping check is released or refused, not retried); refuse fails it for
good and its sender gets the usual failure notice.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.db.clock import utcnow
from bridge.intake.velocity import HOLD_REASON
from bridge.intake.velocity_store import held_orders, refuse_orders, release_orders
from bridge.outcomes.steps import STEPS
from bridge.portal.base import PREFIX, NotFound, Pages
from bridge.portal.pages.report import last_line, utc
from bridge.portal.viewer import Viewer

log = logging.getLogger("bridge.portal")

ACTIONS: Final = ("release", "retry", "refuse")
DONE: Final = {"release": "released", "retry": "retried", "refuse": "refused"}
MAX_IDS: Final = 500  # order ids one form may name


def pumping(order: dict[str, Any]) -> bool:
    """Whether the SMS pumping check held `order` (not an error)."""
    return bool((order["error"] or "").startswith(HOLD_REASON))


def routes(pages: Pages) -> list[BaseRoute]:
    _ = pages._

    def done_sentence(word: str) -> str:
        sentences = {
            "released": _("Released: the orders are queued and sent now."),
            "retried": _("Queued again: the orders are tried once more now."),
            "refused": _("Refused: the orders failed and will not be sent; senders are told."),
        }
        return sentences.get(word, "")

    async def held(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        rows = await pages.store.call(held_orders, scope.customer, None)
        error = ""
        if request.method == "POST":
            form = await pages.form(request)
            action = str(form.get("action") or "")
            ids = [str(i)[:64] for i in form.getlist("order")][:MAX_IDS]
            if action not in ACTIONS:
                error = _("Choose release, retry or refuse.")
            elif not ids:
                error = _("Select at least one held order.")
            else:
                mine = {o["id"]: o for o in rows}
                unknown = [i for i in ids if i not in mine]
                if unknown:
                    raise NotFound(
                        _(
                            "There is no such held order (it may have been released or "
                            "refused already). Reload the page and choose again."
                        )
                    )
                chosen = [mine[i] for i in dict.fromkeys(ids)]
                if action == "retry" and (first := next(filter(pumping, chosen), None)):
                    error = _(
                        "Order %(id)s was held by SMS pumping protection, not after an error: "
                        "release it or refuse it."
                    ) % {"id": first["id"]}
                else:
                    order_ids = [o["id"] for o in chosen]
                    if action == "refuse":  # the sender reads who refused in its notice
                        by = "the operator" if viewer.operator else "your administrator"
                        n = await pages.store.call(
                            refuse_orders, order_ids, utcnow(), steps=STEPS, by=by
                        )
                    else:  # the order's history says which portal account released it
                        who = f"portal account {viewer.username}"
                        n = await pages.store.call(release_orders, order_ids, utcnow(), who)
                    log.info(
                        "portal: %s %s %d held order(s): %s",
                        viewer.username,
                        DONE[action],
                        n,
                        ", ".join(order_ids),
                    )
                    query = f"&{scope.query()}" if scope.query() else ""
                    return pages.redirect(f"{PREFIX}/held?done={DONE[action]}{query}")
        return pages.render(
            request,
            viewer,
            "held.html",
            {
                "scope": scope,
                "rows": [
                    {
                        **o,
                        "reason": last_line(o["error"]).removeprefix(f"{HOLD_REASON}: "),
                        "pumping": pumping(o),
                    }
                    for o in rows
                ],
                "notice": done_sentence(request.query_params.get("done") or ""),
                "error": error,
                "utc": utc,
                "detail_query": scope.query(),
            },
            status=400 if error else 200,
        )

    return [Route(f"{PREFIX}/held", pages.page(held), methods=["GET", "POST"])]
