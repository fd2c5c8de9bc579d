"""The order report: rows from the store → an aligned text table or CSV.

Pure code; also parses the period arguments of `mailsms report orders`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

COLUMNS = (
    "id",
    "created_at",
    "final_at",
    "status",
    "recipient",
    "user",
    "customer",
    "profile",
    "cost_centre",
    "sender_id",
    "parts",
    "attempts",
    "error",
)
TABLE_COLUMNS = (
    "id",
    "created_at",
    "status",
    "recipient",
    "user",
    "profile",
    "cost_centre",
    "parts",
)


def parse_when(text: str) -> datetime:
    """ "2026-10-01", "2026-10-01 08:00" (UTC) or a relative "7d" / "12h" before now."""
    text = text.strip()
    if text[:-1].isdigit() and text[-1:] in ("d", "h"):
        hours = int(text[:-1]) * (24 if text.endswith("d") else 1)
        return datetime.now(UTC) - timedelta(hours=hours)
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[first day, first day of the next month) of "YYYY-MM", in UTC."""
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    nxt = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return start, datetime(nxt.year, nxt.month, 1, tzinfo=UTC)


def previous_month(now: datetime) -> str:
    first = now.date().replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


def months_before(month: str, n: int) -> str:
    """The month `n` months before "YYYY-MM"."""
    year, mon = map(int, month.split("-"))
    index = year * 12 + (mon - 1) - n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def to_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] = TABLE_COLUMNS) -> str:
    cells = [list(columns)] + [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]
    return "\n".join(lines) + "\n"
