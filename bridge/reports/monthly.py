"""The monthly report: per-user rows → totals by service and cost centre, CSV and mail context.

Pure code. The rows come from `bridge.reports.store.monthly_rows` (one per service,
cost centre and user, with orders / sent / parts / failed / received counts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bridge.reports.order_report import to_csv

COUNTS = ("orders", "sent", "parts", "failed", "received")
CSV_COLUMNS = ("service", "cost_centre", "user", *COUNTS)


def _add(into: dict[str, int], row: dict[str, Any]) -> None:
    for key in COUNTS:
        into[key] = into.get(key, 0) + int(row.get(key) or 0)


def summarise(customer: str, month: str, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Totals overall, by service and by cost centre, plus the per-user rows."""
    total: dict[str, int] = dict.fromkeys(COUNTS, 0)
    by_service: dict[str, dict[str, int]] = {}
    by_cost_centre: dict[str, dict[str, int]] = {}
    for row in rows:
        _add(total, row)
        _add(by_service.setdefault(row["service"] or "(none)", {}), row)
        _add(by_cost_centre.setdefault(row["cost_centre"] or "(none)", {}), row)
    return {
        "customer": customer,
        "month": month,
        "total": total,
        "by_service": [{"name": k, **v} for k, v in sorted(by_service.items())],
        "by_cost_centre": [{"name": k, **v} for k, v in sorted(by_cost_centre.items())],
        "rows": [{c: row.get(c, "") for c in CSV_COLUMNS} for row in rows],
    }


def monthly_csv(rows: Sequence[dict[str, Any]]) -> str:
    return to_csv(rows, CSV_COLUMNS)


def mail_context(summary: dict[str, Any], csv_text: str) -> dict[str, Any]:
    """The notice context of the monthly mail: the summary and the CSV as an attachment."""
    filename = f"sms-report-{summary['customer']}-{summary['month']}.csv"
    return {
        **summary,
        "attachments": [{"filename": filename, "mimetype": "text/csv", "content": csv_text}],
    }
