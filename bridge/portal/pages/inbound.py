"""Inbound SMS: what the customer's numbers, keywords and conversations received, newest first.

The same rows as the REST API's `GET /api/v1/inbound` (`inbound.customer_list`): an SMS
belongs to the customer recorded when it was routed; one that matched nobody on a shared
number shows to no customer admin (an operator's "all customers" view shows it). Filters:
period (UTC days), the texter's number, our number; pages of 50 by a keyset mark.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.errors import InputError
from bridge.inbound.customer_list import InboundFilter, list_inbound
from bridge.inbound.status import InboundRoute, InboundStatus
from bridge.portal.base import PREFIX, Pages
from bridge.portal.i18n import N_
from bridge.portal.viewer import Viewer
from bridge.smpp.address import canonical_number

PATH: Final = f"{PREFIX}/inbound"
PAGE: Final = 50
MAX_MARK: Final = 2**62  # a larger page mark is a typo (and more than the database holds)

# Every route and status an SMS can have, in words a customer admin reads (translated
# at render time): a stored word is never shown bare (tests/portal/test_inbound.py).
ROUTES: Final = {
    InboundRoute.NUMBER: N_("its number"),
    InboundRoute.KEYWORD: N_("a keyword"),
    InboundRoute.REPLY: N_("a conversation (reply to an SMS sent)"),
    InboundRoute.UNMATCHED: N_("nobody's keyword (the number's fallback)"),
    InboundRoute.OPERATOR: N_("no customer (the operator's fallback)"),
    InboundRoute.UNCONFIGURED: N_("nobody (no number set up, no conversation)"),
}
STATUSES: Final = {
    InboundStatus.RECEIVED: N_("received, not yet passed on"),
    InboundStatus.NOTIFIED: N_("passed on by mail"),
    InboundStatus.HANDLED: N_("handled (a push, an auto-reply, a list or the stop list)"),
    InboundStatus.UNROUTABLE: N_("nobody takes it: kept, nothing sent"),
    InboundStatus.LIMITED: N_("too many from this sender: kept, nothing sent"),
    InboundStatus.HELD: N_("held for the operator (an error)"),
}


def _day(value: str, name: str, pages: Pages) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(
            pages._("%(field)s: enter a date as YYYY-MM-DD, e.g. 2026-12-01.") % {"field": name}
        ) from None


def _number(value: str, name: str, pages: Pages) -> str | None:
    value = value.strip().replace(" ", "")
    if not value:
        return None
    if len(value) > 20 or not value.lstrip("+").isdigit():
        raise InputError(
            pages._("%(field)s: enter a phone number in international form, e.g. +491701234567.")
            % {"field": name}
        )
    return canonical_number(value)  # 0049… and 49… as the rows store them: +49…


def _filled(params: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if v}


def routes(pages: Pages) -> list[BaseRoute]:
    _ = pages._

    async def inbound(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        q = request.query_params
        since = _day(q.get("since", ""), _("From"), pages)
        until = _day(q.get("until", ""), _("To"), pages)
        mark = q.get("after", "")
        after = int(mark) if mark.isdigit() and int(mark) < MAX_MARK else None
        f = InboundFilter(
            since=datetime.combine(since, time(), UTC) if since else None,
            until=datetime.combine(until + timedelta(days=1), time(), UTC) if until else None,
            source=_number(q.get("from", ""), _("Sent by"), pages),
            destination=_number(q.get("to", ""), _("Sent to"), pages),
            limit=PAGE,
            after=after,
        )
        rows = await pages.store.call(list_inbound, scope.customer_id, f)
        kept = {k: q.get(k, "") for k in ("since", "until", "from", "to")}
        next_url = (
            PATH + scope.query_string(**_filled(kept), after=str(rows[-1]["id"]))
            if len(rows) == PAGE
            else None
        )
        first_url = PATH + scope.query_string(**_filled(kept)) if after is not None else None
        return pages.render(
            request,
            viewer,
            "inbound.html",
            {
                "scope": scope,
                "rows": rows,
                "routes": {k: _(v) for k, v in ROUTES.items()},
                "statuses": {k: _(v) for k, v in STATUSES.items()},
                "filters": kept,
                "next_url": next_url,
                "first_url": first_url,
            },
        )

    return [Route(PATH, pages.page(inbound), methods=["GET"])]
