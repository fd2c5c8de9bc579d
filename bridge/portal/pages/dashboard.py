"""The dashboard: SMS sent, delivered and failed per day, parts by encoding, inbound per day.

For a period of whole UTC days (default: the last 30, today included) and the page's
scope (a customer admin's customer; an operator's choice or all customers): total
cards, and three server-rendered SVG charts (`bridge/portal/charts.py`), each with
the same numbers as a table under it. The counts come from
`bridge/portal/queries_dashboard.py`.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.db.clock import utcnow
from bridge.errors import InputError
from bridge.portal import charts
from bridge.portal.base import PREFIX, Pages
from bridge.portal.queries_dashboard import DashboardCounts, Period, dashboard_counts
from bridge.portal.viewer import Viewer

DEFAULT_DAYS: Final = 30
MAX_DAYS: Final = 366
ENCODINGS: Final = ("gsm7", "ucs2")
COLOURS: Final = {
    "sent": "#1f5fbf",
    "delivered": "#1e7b34",
    "failed": "#b3261e",
    "gsm7": "#1f5fbf",
    "ucs2": "#c77c02",
    "inbound": "#6a3fb5",
}


def period_of(pages: Pages, request: Request, today: date) -> Period:
    """The period asked for (`since`, `until`: YYYY-MM-DD), or the last DEFAULT_DAYS."""
    _ = pages._

    def day(name: str, default: date) -> date:
        text = (request.query_params.get(name) or "").strip()
        if not text:
            return default
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            raise InputError(
                _("The dates of the period are written YYYY-MM-DD, e.g. 2026-11-01.")
            ) from None

    last = day("until", today)
    first = day("since", last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise InputError(_("The period's first day is after its last day. Swap the dates."))
    if (last - first).days >= MAX_DAYS:
        raise InputError(_("Choose a period of at most 366 days."))
    return Period(first, last)


def build(pages: Pages, counts: DashboardCounts) -> dict[str, Any]:
    """The page's cards, charts and tables from the counts (pure)."""
    _ = pages._
    days = counts.days
    labels = tuple(d[5:] for d in days)  # MM-DD
    per_day = [counts.per_day.get(d) for d in days]
    names = {
        "sent": _("Sent"),
        "delivered": _("Delivered"),
        "failed": _("Failed"),
        "gsm7": _("GSM-7"),
        "ucs2": _("UCS-2"),
        "inbound": _("Inbound"),
    }

    def series(key: str, values: list[int]) -> charts.Series:
        return charts.Series(key, names[key], COLOURS[key], tuple(values))

    status = [
        series("sent", [r.sent if r else 0 for r in per_day]),
        series("delivered", [r.delivered if r else 0 for r in per_day]),
        series("failed", [r.failed if r else 0 for r in per_day]),
    ]
    encodings = tuple(
        [*ENCODINGS, *sorted(k for k in counts.parts_by_encoding if k not in ENCODINGS)]
    )
    parts = [
        charts.Series(
            "parts",
            _("Parts"),
            COLOURS["gsm7"],
            tuple(counts.parts_by_encoding.get(k, 0) for k in encodings),
        )
    ]
    inbound = [series("inbound", [counts.inbound_per_day.get(d, 0) for d in days])]
    total = counts.total()
    no_data = _("No data in this period")
    chart_status = charts.bar_chart(
        _("SMS per day"),
        _("Sent, delivered and failed SMS per day (UTC); the numbers are in the table below."),
        days,
        labels,
        status,
    )
    chart_parts = charts.bar_chart(
        _("Parts by encoding"),
        _("SMS parts of sent SMS per encoding; the numbers are in the table below."),
        encodings,
        tuple(names.get(k, k) for k in encodings),
        parts,
    )
    chart_inbound = charts.line_chart(
        _("Inbound SMS per day"),
        _("Inbound SMS per day (UTC); the numbers are in the table below."),
        days,
        labels,
        inbound,
    )
    rate = f"{100 * total.delivered / total.sent:.1f} %" if total.sent else "–"
    return {
        "cards": [
            (_("Orders"), str(total.orders)),
            (_("Sent"), str(total.sent)),
            (_("Delivered"), str(total.delivered)),
            (_("Failed"), str(total.failed)),
            (_("Delivery rate"), rate),
            (_("Parts sent"), str(sum(counts.parts_by_encoding.values()))),
            (_("Inbound"), str(sum(counts.inbound_per_day.values()))),
        ],
        "charts": [
            (chart, charts.svg(chart, chart_id, no_data), header, rows)
            for chart, chart_id, header, rows in (
                (chart_status, "chart-status", _("Day"), days),
                (chart_parts, "chart-parts", _("Encoding"), chart_parts.labels),
                (chart_inbound, "chart-inbound", _("Day"), days),
            )
        ],
    }


def routes(pages: Pages) -> list[BaseRoute]:
    async def dashboard(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        period = period_of(pages, request, utcnow().date())
        counts = await pages.store.call(dashboard_counts, scope.customer_id, period)
        return pages.render(
            request,
            viewer,
            "dashboard.html",
            {"scope": scope, "period": period, **build(pages, counts)},
        )

    return [Route(f"{PREFIX}/", pages.page(dashboard), methods=["GET"])]
