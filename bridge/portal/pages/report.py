"""The outbound report: a customer's orders by filter, 50 a page; the same rows as CSV; one
order's detail with its history as a timeline.

Every query is scoped (`Pages.scope`): a customer admin sees its own customer's orders
only, and another customer's order answers 404 exactly like a missing one; an operator
sees every customer's or chooses one. The period is in whole UTC days (default: the last
7, today included) and never reaches back further than the retention
(`[reports] retention_days`), which the page states. Pages are keyset pages (after or
before an order id), newest first. The CSV streams every matching row in chunks, newest
first, in UTF-8 with a byte order mark; a cell a spreadsheet would read as a formula
gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from urllib.parse import quote, urlencode

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from bridge.db.clock import utcnow
from bridge.db.store import Store
from bridge.mt.status import OrderStatus
from bridge.mt.waiting import order_row, waiting
from bridge.portal.base import PREFIX, NotFound, Pages, Scope
from bridge.portal.queries_report import profile_names
from bridge.portal.viewer import Viewer
from bridge.reports.store import OrderFilter, order_detail, query_orders
from bridge.spreadsheet import safe_cell

PAGE: Final = 50  # rows per page of the table
CSV_CHUNK: Final = 5000  # rows per database call while the CSV streams (each call sorts)
DEFAULT_DAYS: Final = 7
SHORT_TEXT: Final = 40  # characters of the text the table shows
MAX_FIELD: Final = 254  # the longest filter value taken (a mail address)
_NUMBER: Final = re.compile(r"\+[1-9][0-9]{5,14}")
_FILENAME: Final = re.compile(r"[^A-Za-z0-9._-]")

CSV_COLUMNS: Final = (
    "created_at",
    "id",
    "customer",
    "service",
    "user",
    "recipient",
    "sender_id",
    "status",
    "parts",
    "cost_centre",
    "error",
    "text",
)


def utc(at: datetime | None) -> str:
    """A stored time as the report shows it, in UTC (SQLite hands back naive UTC)."""
    if at is None:
        return ""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def last_line(error: str | None) -> str:
    """An order's error in one line (a held order's may be a whole traceback)."""
    lines = (error or "").strip().splitlines()
    return lines[-1][:200] if lines else ""


@dataclass(frozen=True, slots=True)
class Filters:
    """The report's filters as the form holds them; the period's days are inclusive, UTC."""

    start: date
    end: date
    profile: str = ""
    user: str = ""
    recipient: str = ""
    status: str = ""
    cost_centre: str = ""

    def params(self, scope: Scope) -> dict[str, str]:
        """The query string of these filters (and the operator's customer) for links."""
        values = {
            "customer": scope.customer if scope.choices and scope.customer else "",
            "profile": self.profile,
            "user": self.user,
            "recipient": self.recipient,
            "status": self.status,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "cost_centre": self.cost_centre,
        }
        return {k: v for k, v in values.items() if v}

    def query(self, scope: Scope) -> OrderFilter:
        return OrderFilter(
            since=datetime.combine(self.start, time(), UTC),
            until=datetime.combine(self.end + timedelta(days=1), time(), UTC),
            customer_id=scope.customer_id,
            profile=self.profile or None,
            user=self.user or None,
            recipient=self.recipient or None,
            status=self.status or None,
            cost_centre=self.cost_centre or None,
            newest_first=True,
        )


@dataclass(frozen=True, slots=True)
class Read:
    """The filters read from a request, what was wrong with them, and whether the period
    was cut to the retention."""

    filters: Filters
    errors: tuple[str, ...]
    cut: bool


def _day(
    params: QueryParams, name: str, default: date, label: str, _: Callable[[str], str]
) -> date | str:
    text = (params.get(name) or "").strip()
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        return _("%(field)s: enter a date as YYYY-MM-DD, e.g. 2026-12-01.") % {"field": label}


def read_filters(params: QueryParams, today: date, oldest: date, _: Callable[[str], str]) -> Read:
    """The filters of `params` (a bad value: a sentence in `errors`, the default kept)."""
    errors: list[str] = []

    def text(name: str) -> str:
        value = (params.get(name) or "").strip()
        if len(value) > MAX_FIELD:
            errors.append(_("A filter value is too long; shorten it."))
            return ""
        return value

    start = _day(params, "from", max(today - timedelta(days=DEFAULT_DAYS - 1), oldest),
                 _("From"), _)  # fmt: skip
    end = _day(params, "to", today, _("To"), _)
    if isinstance(start, str):
        errors.append(start)
        start = max(today - timedelta(days=DEFAULT_DAYS - 1), oldest)
    if isinstance(end, str):
        errors.append(end)
        end = today
    if end < start:
        errors.append(_("The period ends before it starts: make 'to' the same day or later."))
        end = start
    cut = start < oldest
    start = max(start, oldest)
    end = max(end, start)
    recipient = text("recipient").replace(" ", "")
    if recipient.startswith("00"):
        recipient = "+" + recipient[2:]
    if recipient and not _NUMBER.fullmatch(recipient):
        errors.append(_("Recipient: enter the number in international form, e.g. +491701234567."))
        recipient = ""
    status = text("status")
    if status and status not in {s.value for s in OrderStatus}:
        errors.append(_("Status: choose one of the list."))
        status = ""
    filters = Filters(
        start=start,
        end=end,
        profile=text("profile"),
        user=text("user").lower(),
        recipient=recipient,
        status=status,
        cost_centre=text("cost_centre"),
    )
    return Read(filters, tuple(errors), cut)


def status_labels(_: Callable[[str], str]) -> dict[str, str]:
    """The order statuses as the portal names them."""
    return {
        OrderStatus.QUEUED: _("queued"),
        OrderStatus.DEFERRED: _("deferred"),
        OrderStatus.SUBMITTED: _("submitted"),
        OrderStatus.DELIVERED: _("delivered"),
        OrderStatus.UNDELIVERABLE: _("undeliverable"),
        OrderStatus.EXPIRED: _("expired"),
        OrderStatus.FAILED: _("failed"),
        OrderStatus.UNCONFIRMED: _("unconfirmed"),
        OrderStatus.HELD: _("held"),
    }


def csv_line(row: Mapping[str, Any]) -> str:
    """One order as a line of the CSV download."""
    cells = {
        "created_at": utc(row["created_at"]),
        "id": row["id"],
        "customer": row["customer"],
        "service": row["profile"],
        "user": row["user"],
        "recipient": row["recipient"],
        "sender_id": row["sender_id"],
        "status": row["status"],
        "parts": str(row["parts"]),
        "cost_centre": row["cost_centre"],
        "error": last_line(row["error"]),
        "text": row["text"],
    }
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([safe_cell(cells[c]) for c in CSV_COLUMNS])
    return out.getvalue()


async def csv_lines(store: Store, query: OrderFilter, chunk: int) -> AsyncIterator[str]:
    """The CSV download: its header, then every order `query` finds, `chunk` rows per
    database call (each call continues after the last order of the one before)."""
    yield "\ufeff" + ",".join(CSV_COLUMNS) + "\r\n"
    query = replace(query, limit=chunk)
    while True:
        rows = await store.call(query_orders, query)
        if rows:
            yield "".join(csv_line(r) for r in rows)
        if len(rows) < chunk:
            return
        query = replace(query, after=rows[-1]["id"])


def routes(pages: Pages, retention_days: int) -> list[BaseRoute]:
    _ = pages._

    def period() -> tuple[date, date]:
        now = utcnow()
        return now.date(), (now - timedelta(days=retention_days)).date() + timedelta(days=1)

    async def mark(scope: Scope, order_id: str | None) -> str | None:
        """A page mark (an order id) if it is an order of the scope; else None (the top)."""
        if not order_id or len(order_id) > 64:
            return None
        found = await pages.store.call(
            query_orders, OrderFilter(customer_id=scope.customer_id, order_id=order_id)
        )
        return order_id if found else None

    async def report(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        today, oldest = period()
        read = read_filters(request.query_params, today, oldest, _)
        f = read.filters
        rows: list[dict[str, Any]] = []
        prev_url = next_url = None
        if not read.errors:
            query = f.query(scope)
            after = await mark(scope, request.query_params.get("after"))
            before = await mark(scope, request.query_params.get("before"))
            if before:  # the page before: the next PAGE rows the other way round
                query = replace(query, newest_first=False, after=before, limit=PAGE + 1)
                found = await pages.store.call(query_orders, query)
                rows = list(reversed(found[:PAGE]))
                newer = len(found) > PAGE
                older = bool(rows)
            else:
                query = replace(query, after=after, limit=PAGE + 1)
                found = await pages.store.call(query_orders, query)
                rows = found[:PAGE]
                newer = bool(after) and bool(rows)
                older = len(found) > PAGE
            base = f"{PREFIX}/report?" + urlencode(f.params(scope))
            if newer:
                prev_url = f"{base}&before={quote(rows[0]['id'])}"
            if older:
                next_url = f"{base}&after={quote(rows[-1]['id'])}"
        profiles = await pages.store.call(profile_names, scope.customer_id)
        return pages.render(
            request,
            viewer,
            "report.html",
            {
                "scope": scope,
                "f": f,
                "rows": rows,
                "errors": read.errors,
                "cut": read.cut,
                "oldest": oldest,
                "retention_days": retention_days,
                "profiles": profiles,
                "statuses": status_labels(_),
                "prev_url": prev_url,
                "next_url": next_url,
                "csv_url": f"{PREFIX}/report.csv?" + urlencode(f.params(scope)),
                "detail_query": scope.query(),
                "utc": utc,
                "short": SHORT_TEXT,
                "page_size": PAGE,
            },
            status=400 if read.errors else 200,
        )

    async def report_csv(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        today, oldest = period()
        read = read_filters(request.query_params, today, oldest, _)
        if read.errors:
            return pages.error_page(request, viewer, 400, " ".join(read.errors))
        f = read.filters

        who = _FILENAME.sub("_", scope.customer or "all")
        name = f"orders-{who}-{f.start.isoformat()}-{f.end.isoformat()}.csv"
        return StreamingResponse(
            csv_lines(pages.store, f.query(scope), CSV_CHUNK),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def order(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        order_id = request.path_params["id"]
        found = await pages.store.call(order_detail, scope.customer_id, order_id[:64])
        if found is None:
            raise NotFound(
                _("There is no such order (or it is older than %(days)d days).")
                % {"days": retention_days}
            )
        row = await pages.store.call(order_row, found["id"])
        now = utcnow()
        wait = waiting(row, found["history"], now) if row is not None else None
        return pages.render(
            request,
            viewer,
            "order.html",
            {
                "scope": scope,
                "o": found,
                "waiting": wait.line(now).removeprefix("waiting: ") if wait else "",
                "error": last_line(found["error"]),
                "statuses": status_labels(_),
                "utc": utc,
                "back": f"{PREFIX}/report" + (f"?{scope.query()}" if scope.query() else ""),
                "held": f"{PREFIX}/held" + (f"?{scope.query()}" if scope.query() else ""),
            },
        )

    return [
        Route(f"{PREFIX}/report", pages.page(report), methods=["GET"]),
        Route(f"{PREFIX}/report.csv", pages.page(report_csv), methods=["GET"]),
        Route(f"{PREFIX}/orders/{{id}}", pages.page(order), methods=["GET"]),
    ]
