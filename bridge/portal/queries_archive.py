"""The report archive page's reads and its resend: archived monthly reports of one customer or all.

The archive itself (`monthly_report`, kept `[reports] monthly_archive_months` months)
is written by `bridge/reports/monthly_run.py`; this module lists it for a scope, finds
one report by id, and resends one through the monthly report's own notice path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from bridge.db.core import table
from bridge.reports.monthly_run import mail_monthly, report_recipients
from bridge.reports.tables import MonthlyReport
from bridge.tenants.tables import Customer

_monthly = table(MonthlyReport)
_customer = table(Customer)


@dataclass(frozen=True, slots=True)
class Archived:
    """One archived monthly report as the archive page shows it."""

    id: int
    customer_id: int
    customer: str
    month: str  # "2026-10"
    generated_at: datetime
    mailed_at: datetime | None
    summary: dict[str, Any]
    csv: str


def _select() -> Any:
    return select(
        _monthly.c.id,
        _monthly.c.customer_id,
        _customer.c.name.label("customer"),
        _monthly.c.month,
        _monthly.c.generated_at,
        _monthly.c.mailed_at,
        _monthly.c.summary,
        _monthly.c.csv,
    ).select_from(_monthly.join(_customer, _monthly.c.customer_id == _customer.c.id))


def _row(r: Any) -> Archived:
    return Archived(
        r.id,
        r.customer_id,
        r.customer,
        r.month,
        r.generated_at,
        r.mailed_at,
        dict(r.summary or {}),
        r.csv or "",
    )


def list_archived(conn: Connection, customer_id: int | None) -> list[Archived]:
    """The archived reports of `customer_id` (None: every customer), newest month first."""
    query = _select().order_by(_monthly.c.month.desc(), _customer.c.name)
    if customer_id is not None:
        query = query.where(_monthly.c.customer_id == customer_id)
    return [_row(r) for r in conn.execute(query)]


def find_archived(conn: Connection, report_id: int, customer_id: int | None) -> Archived | None:
    """Report `report_id` if it belongs to `customer_id` (None: any customer)."""
    query = _select().where(_monthly.c.id == report_id)
    if customer_id is not None:
        query = query.where(_monthly.c.customer_id == customer_id)
    r = conn.execute(query).first()
    return None if r is None else _row(r)


def resend(conn: Connection, report: Archived, now: datetime) -> list[str]:
    """Queue the report's mail again to the customer's `report_recipients` (as the monthly
    run does); the addresses it went to (none: nothing queued)."""
    recipients = report_recipients(conn, report.customer_id, ())
    mail_monthly(conn, report.customer_id, report.summary, report.csv, recipients, now)
    return recipients
