"""The stop list: the customer's opted-out numbers, search, add, remove and a CSV export.

The same functions as `mailsms stoplist` and the REST API (`add_stop`, `remove_stop`, and
`list_stops` for the export; a page of the table is one query, `queries_stoplist`), and
the same reading of a number (`classify_number` with the customer's `default_country`),
so an entry made here refuses mail to the number at RCPT exactly like one from a STOP
SMS. A customer admin sees and changes only its own customer's entries; the export is
written formula-safe (a cell starting with = + - @, a tab or a carriage return gets a
leading ', except a plain E.164 number, which is digits after the +).
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.db.clock import utcnow
from bridge.errors import InputError
from bridge.inbound.actions_store import StopRow, add_stop, list_stops, remove_stop
from bridge.intake.addresses import classify_number
from bridge.portal.base import PREFIX, NotFound, Pages, Scope
from bridge.portal.i18n import N_
from bridge.portal.queries_lists import customer_settings
from bridge.portal.queries_numbers import numbers_of
from bridge.portal.queries_stoplist import stops_page
from bridge.portal.viewer import Viewer
from bridge.smpp.address import canonical_number
from bridge.spreadsheet import safe_cell
from bridge.tenants.policy import resolve

PATH: Final = f"{PREFIX}/stoplist"
MAX_PAGE: Final = 100_000  # a larger page number is a typo (and an offset SQL refuses)
PAGE_SIZE: Final = 200

DONE: Final = {
    "added": N_("The number is on the stop list now: mail to it is refused."),
    "already": N_("The number was on the stop list already."),
    "removed": N_("The number is off the stop list: it gets SMS again."),
}


def _digits(search: str) -> str:
    """What a search matches in a number: its digits (spaces, dashes, a + ignored)."""
    return re.sub(r"[^0-9]", "", search)


def _csv(rows: list[StopRow], search: str, every_customer: bool) -> str:
    """The export: msisdn, service, origin, created_at (customer first for every customer)."""
    digits = _digits(search)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = ["msisdn", "service", "origin", "created_at"]
    writer.writerow(["customer", *header] if every_customer else header)
    for r in rows:
        if digits and digits not in r.msisdn:
            continue
        cells = [r.msisdn, r.service, r.origin, r.created_at.isoformat()]
        if every_customer:
            cells.insert(0, r.customer)
        writer.writerow([safe_cell(c) for c in cells])
    return out.getvalue()


def routes(pages: Pages) -> list[BaseRoute]:
    _ = pages._

    async def number(customer_id: int, text: str) -> str:
        own = await pages.store.call(customer_settings, customer_id)
        found = classify_number(text, resolve(pages.defaults, own).default_country)
        if found is None:
            raise InputError(
                _("%(number)r is not a phone number; write it internationally, e.g. +491701234567.")
                % {"number": text[:40]}
            )
        return found[0]

    def customer_of(scope: Scope) -> int:
        if scope.customer_id is None:
            raise InputError(_("Choose a customer first (the customer chooser above the form)."))
        return scope.customer_id

    async def show(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        search = request.query_params.get("q", "").strip()[:40]
        try:
            page = min(max(1, int(request.query_params.get("page", "1"))), MAX_PAGE)
        except ValueError:
            page = 1
        found = await pages.store.call(
            stops_page, scope.customer_id, _digits(search), (page - 1) * PAGE_SIZE, PAGE_SIZE
        )
        extra = {"q": search} if search else {}
        numbers = (
            await pages.store.call(numbers_of, scope.customer_id)
            if scope.customer_id is not None
            else []
        )
        done = DONE.get(request.query_params.get("done", ""), "")
        return pages.render(
            request,
            viewer,
            "stoplist.html",
            {
                "scope": scope,
                "rows": found.rows,
                "total": found.total,
                "search": search,
                "services": sorted({n.number for n in numbers}),
                "notice": _(done) if done else "",
                "export_url": f"{PATH}/export" + scope.query_string(**extra),
                "prev_url": PATH + scope.query_string(page=str(page - 1), **extra)
                if page > 1
                else None,
                "next_url": (
                    PATH + scope.query_string(page=str(page + 1), **extra)
                    if page * PAGE_SIZE < found.total
                    else None
                ),
            },
        )

    async def add(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        cid = customer_of(scope)
        form = await pages.form(request)
        given = form.get("msisdn")
        msisdn = await number(cid, given if isinstance(given, str) else "")
        service = form.get("service")
        service = canonical_number(service) if isinstance(service, str) else ""
        if service:
            own = {n.number for n in await pages.store.call(numbers_of, cid)}
            if service not in own:
                raise InputError(
                    _("Choose one of your inbound numbers, or every number, for the entry.")
                )
        added = await pages.store.call(add_stop, cid, msisdn, service, utcnow(), "portal")
        return pages.redirect(PATH + scope.query_string(done="added" if added else "already"))

    async def remove(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        cid = customer_of(scope)
        form = await pages.form(request)
        given = form.get("msisdn")
        text = given.strip()[:40] if isinstance(given, str) else ""
        try:
            msisdn = await number(cid, text)
        except InputError:  # an entry a STOP from an alphanumeric sender made: as stored
            msisdn = canonical_number(text)
        service = form.get("service")
        # one entry (the row's button names its service), or every entry of the number
        which = service if isinstance(service, str) and service != "*" else None
        removed = await pages.store.call(remove_stop, cid, msisdn, which)
        if not removed:
            raise NotFound(_("That number is not on your stop list."))
        return pages.redirect(PATH + scope.query_string(done="removed"))

    async def export(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        search = request.query_params.get("q", "").strip()[:40]
        rows = await pages.store.call(list_stops, scope.customer_id)  # as `stoplist export`
        content = await asyncio.to_thread(_csv, rows, search, scope.customer_id is None)
        who = re.sub(r"[^A-Za-z0-9._-]", "_", scope.customer or "all")
        name = f"stoplist-{who}-{utcnow():%Y%m%d}.csv"
        return Response(
            content,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    return [
        Route(PATH, pages.page(show), methods=["GET"]),
        Route(PATH, pages.page(add), methods=["POST"]),
        Route(f"{PATH}/remove", pages.page(remove), methods=["POST"]),
        Route(f"{PATH}/export", pages.page(export), methods=["GET"]),
    ]
