"""The monthly report run: generate, archive and mail each customer's report for a month.

`generate_monthly` (re)builds one customer's report and archives it; `monthly_due` is
the daily job's part: at the start of a month every customer without a report for
the previous month gets one, mailed (HTML summary + CSV) to the configured addresses
and the customer's `report_recipients`; archived reports older than the archive
period are dropped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from bridge.db.core import table
from bridge.notices.queue import queue_notice
from bridge.reports import store as sql
from bridge.reports.monthly import mail_context, monthly_csv, summarise
from bridge.reports.order_report import month_bounds, months_before, previous_month
from bridge.tenants.tables import Customer

_customer = table(Customer)


def generate_monthly(
    conn: Connection, cid: int, customer: str, month: str, now: datetime
) -> tuple[dict[str, Any], str]:
    """Count the month, archive the result (replacing an earlier one); (summary, csv)."""
    start, end = month_bounds(month)
    rows = sql.monthly_rows(conn, cid, start, end)
    summary = summarise(customer, month, rows)
    csv_text = monthly_csv(rows)
    sql.save_monthly(conn, cid, month, summary, csv_text, now)
    return summary, csv_text


def report_recipients(conn: Connection, cid: int, configured: tuple[str, ...]) -> list[str]:
    settings = conn.execute(select(_customer.c.settings).where(_customer.c.id == cid)).scalar()
    own = list((settings or {}).get("report_recipients") or [])
    return list(dict.fromkeys([*configured, *own]))


def mail_monthly(
    conn: Connection,
    cid: int,
    summary: dict[str, Any],
    csv_text: str,
    recipients: list[str],
    now: datetime,
) -> int:
    """Queue the report mail to each recipient; how many were queued."""
    context = mail_context(summary, csv_text)
    for address in recipients:
        queue_notice(conn, "monthly_report", address, context, now, customer=summary["customer"])
    if recipients:
        sql.mark_mailed(conn, cid, summary["month"], now)
    return len(recipients)


def monthly_due(
    conn: Connection, now: datetime, configured: tuple[str, ...], archive_months: int
) -> int:
    """Generate and mail last month's missing reports; drop old ones. Mails queued."""
    month = previous_month(now)
    queued = 0
    for cid, name in sql.customers(conn):
        if sql.get_monthly(conn, cid, month) is not None:
            continue
        summary, csv_text = generate_monthly(conn, cid, name, month, now)
        queued += mail_monthly(
            conn, cid, summary, csv_text, report_recipients(conn, cid, configured), now
        )
    sql.purge_monthly(conn, months_before(month, archive_months - 1))
    return queued
