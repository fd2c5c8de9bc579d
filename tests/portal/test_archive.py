"""The report archive over HTTP: list, view, CSV, resend by mail; scoping, IDOR and CSRF."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.store import run_sync
from bridge.notices.tables import Notice
from bridge.reports.monthly_run import generate_monthly
from bridge.reports.store import customer_id
from bridge.reports.tables import MonthlyReport
from bridge.spreadsheet import safe_csv
from bridge.tenants.tables import Customer
from tests.helpers import maildir_messages, wait_for
from tests.portal.harness import PortalRun, login, portal
from tests.portal.test_dashboard import PHONE, let_acme_send, send, until_delivered

_monthly = table(MonthlyReport)


def archive_this_month(run: PortalRun, customer: str) -> tuple[int, str]:
    """The current month's report of `customer`, archived as the monthly run does; (id, month)."""
    assert run.bridge.store is not None
    month = utcnow().strftime("%Y-%m")

    def generate(conn: Any) -> int:
        cid = customer_id(conn, customer)
        assert cid is not None
        generate_monthly(conn, cid, customer, month, utcnow())
        return int(
            conn.execute(
                select(_monthly.c.id).where(
                    _monthly.c.customer_id == cid, _monthly.c.month == month
                )
            ).scalar_one()
        )

    return run_sync(run.bridge.store.engine, generate), month


def report_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'href="/portal/archive/(\d+)[?"]', html)]


def queued_reports(run: PortalRun) -> list[str]:
    assert run.bridge.store is not None
    notices = table(Notice)
    return list(
        run_sync(
            run.bridge.store.engine,
            lambda c: (
                c.execute(select(notices.c.recipient).where(notices.c.kind == "monthly_report"))
                .scalars()
                .all()
            ),
        )
    )


async def test_the_archive_shows_the_customers_own_reports_and_their_numbers(
    tmp_path: Path,
) -> None:
    async with portal(tmp_path) as run:
        let_acme_send(run)
        await send(run, "anna@acme.example", [PHONE, "+491701234568"])
        await send(run, "demo@example.com", [PHONE])
        await until_delivered(run, 3)
        acme_id, month = archive_this_month(run, "acme")
        demo_id, _ = archive_this_month(run, "demo")
        async with run.client() as acme, run.client() as ops:
            await login(acme, "acme-admin")
            await login(ops, "ops")
            listing = (await acme.get("/portal/archive")).text
            assert acme_id in report_ids(listing) and demo_id not in report_ids(listing)
            assert month in listing
            everything = (await ops.get("/portal/archive")).text
            assert {acme_id, demo_id} <= set(report_ids(everything))
            assert ">acme</td>" in everything and ">demo</td>" in everything
            only_demo = (await ops.get("/portal/archive", params={"customer": "demo"})).text
            assert demo_id in report_ids(only_demo) and acme_id not in report_ids(only_demo)

            page = await acme.get(f"/portal/archive/{acme_id}")
            assert page.status_code == 200
            assert f"SMS report for acme, {month}" in page.text
            values = dict(
                re.findall(
                    r'<div class="label muted">([^<]+)</div><div class="value">(\d+)</div>',
                    page.text,
                )
            )
            assert values["Orders"] == "2" and values["Sent"] == "2" and values["Failed"] == "0"
            assert "<td>anna@acme.example</td>" in page.text

            r = await acme.get(f"/portal/archive/{acme_id}/csv")
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
            assert f'filename="sms-report-acme-{month}.csv"' in r.headers["content-disposition"]
            rows = list(csv.DictReader(io.StringIO(r.text)))
            assert [(row["user"], row["orders"], row["sent"]) for row in rows] == [
                ("anna@acme.example", "2", "2")
            ]


async def test_another_customers_report_answers_404_everywhere(tmp_path: Path) -> None:
    async with portal(tmp_path) as run:
        acme_id, _ = archive_this_month(run, "acme")
        demo_id, _ = archive_this_month(run, "demo")
        for user, theirs in (("acme-admin", demo_id), ("admin", acme_id)):
            async with run.client() as web:
                csrf = await login(web, user)
                for path in (f"/portal/archive/{theirs}", f"/portal/archive/{theirs}/csv"):
                    r = await web.get(path)
                    assert r.status_code == 404 and "no archived report" in r.text, path
                    # Naming the other customer does not help a customer admin.
                    r = await web.get(
                        path, params={"customer": "demo" if theirs == demo_id else "acme"}
                    )
                    assert r.status_code == 404, path
                r = await web.post(f"/portal/archive/{theirs}/resend", data={"csrf": csrf})
                assert r.status_code == 404
                assert (await web.get("/portal/archive/999999")).status_code == 404
        assert queued_reports(run) == []
        # An operator who chose one customer does not reach the other's report either.
        async with run.client() as ops:
            await login(ops, "ops")
            r = await ops.get(f"/portal/archive/{demo_id}", params={"customer": "acme"})
            assert r.status_code == 404
            assert (await ops.get(f"/portal/archive/{demo_id}")).status_code == 200


async def test_resend_mails_the_report_to_the_customers_recipients(tmp_path: Path) -> None:
    async with portal(tmp_path) as run:
        acme_id, month = archive_this_month(run, "acme")
        async with run.client() as web:
            csrf = await login(web, "acme-admin")
            # No report recipients yet: refused with what to do, nothing queued.
            r = await web.post(f"/portal/archive/{acme_id}/resend", data={"csrf": csrf})
            assert r.status_code == 400 and "no report recipients" in r.text
            assert queued_reports(run) == []

            customers = table(Customer)
            assert run.bridge.store is not None
            run_sync(
                run.bridge.store.engine,
                lambda c: c.execute(
                    update(customers)
                    .where(customers.c.name == "acme")
                    .values(settings={"report_recipients": ["finance@acme.example"]})
                ),
            )
            # Without the CSRF token: refused, nothing queued.
            r = await web.post(f"/portal/archive/{acme_id}/resend")
            assert r.status_code == 403 and queued_reports(run) == []

            r = await web.post(f"/portal/archive/{acme_id}/resend", data={"csrf": csrf})
            assert r.status_code == 303
            assert r.headers["location"] == f"/portal/archive/{acme_id}?done=sent"
            page = (await web.get(r.headers["location"])).text
            assert "queued for mailing again" in page and "finance@acme.example" in page
            assert queued_reports(run) == ["finance@acme.example"]

        def report_mail() -> Any:
            found = [
                m
                for m in maildir_messages(run.settings.mailer.maildir)
                if str(m["To"]) == "finance@acme.example"
            ]
            return found or None

        [mail] = await wait_for(report_mail, within=20)
        assert month in str(mail["Subject"]) and "acme" in str(mail["Subject"])
        [attachment] = list(mail.iter_attachments())
        assert attachment.get_filename() == f"sms-report-acme-{month}.csv"


def test_csv_cells_that_a_spreadsheet_would_run_get_a_quote() -> None:
    text = "service,cost_centre,user,orders\n,=HYPERLINK(1),a@b.example,2\n@x,+1+1,-2,+4917\n"
    rows = list(csv.reader(io.StringIO(safe_csv(text))))
    assert rows == [
        ["service", "cost_centre", "user", "orders"],
        ["", "'=HYPERLINK(1)", "a@b.example", "2"],
        ["'@x", "'+1+1", "'-2", "+4917"],  # a plain number stays a number
    ]
