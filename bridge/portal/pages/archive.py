"""The report archive: the archived monthly reports, one month's report, its CSV, resend by mail.

The list shows the scope's archived reports (the monthly run keeps `[reports]
monthly_archive_months`, six by default); a report is addressed by its id and another
customer's id answers 404 like a missing one. "Resend" queues the monthly report mail
again, through the monthly run's own notice path, to the customer's
`report_recipients`.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.db.clock import utcnow
from bridge.portal.base import PREFIX, NotFound, Pages, Scope
from bridge.portal.queries_archive import Archived, find_archived, list_archived, resend
from bridge.portal.viewer import Viewer
from bridge.reports.monthly_run import report_recipients
from bridge.spreadsheet import safe_csv

PATH: Final = f"{PREFIX}/archive"


def routes(pages: Pages) -> list[BaseRoute]:
    _ = pages._

    async def report(request: Request, viewer: Viewer) -> tuple[Scope, Archived]:
        scope = await pages.scope(request, viewer)
        found = await pages.store.call(
            find_archived, int(request.path_params["id"]), scope.customer_id
        )
        if found is None:
            raise NotFound(_("There is no archived report with that number."))
        return scope, found

    async def index(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        reports = await pages.store.call(list_archived, scope.customer_id)
        return pages.render(request, viewer, "archive.html", {"scope": scope, "reports": reports})

    async def show(request: Request, viewer: Viewer) -> Response:
        scope, found = await report(request, viewer)
        recipients = await pages.store.call(report_recipients, found.customer_id, ())
        done = request.query_params.get("done")
        notice = _("The report is queued for mailing again.") if done == "sent" else ""
        return pages.render(
            request,
            viewer,
            "archive_report.html",
            {
                "report": found,
                "recipients": recipients,
                "notice": notice,
                "error": "",
                "query": scope.query(),
            },
        )

    async def download(request: Request, viewer: Viewer) -> Response:
        _scope, found = await report(request, viewer)
        name = f"sms-report-{found.customer}-{found.month}.csv"
        return Response(
            safe_csv(found.csv),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def mail_again(request: Request, viewer: Viewer) -> Response:
        scope, found = await report(request, viewer)
        sent = await pages.store.call(resend, found, utcnow())
        if not sent:
            return pages.render(
                request,
                viewer,
                "archive_report.html",
                {
                    "report": found,
                    "recipients": sent,
                    "notice": "",
                    "error": _(
                        "This customer has no report recipients. Set report_recipients in "
                        "the customer's settings, then resend the report."
                    ),
                    "query": scope.query(),
                },
                status=400,
            )
        query = scope.query()
        return pages.redirect(f"{PATH}/{found.id}?{query + '&' if query else ''}done=sent")

    return [
        Route(PATH, pages.page(index), methods=["GET"]),
        Route(f"{PATH}/{{id:int}}", pages.page(show), methods=["GET"]),
        Route(f"{PATH}/{{id:int}}/csv", pages.page(download), methods=["GET"]),
        Route(f"{PATH}/{{id:int}}/resend", pages.page(mail_again), methods=["POST"]),
    ]
