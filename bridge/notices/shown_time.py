"""Times as notices show them: in the reader's time zone, with the zone named.

Pure code. `shown_time(at, "Europe/Berlin")` → `2026-11-22 11:00:00 CET (Europe/Berlin)`;
in UTC (the default, and for an unknown zone) → `2026-11-22 10:00:00 UTC`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def shown_time(at: datetime | None, zone: str | None = "UTC") -> str:
    """`at` in `zone` as `YYYY-MM-DD HH:MM:SS ABBR (Zone/Name)`; "" for no time."""
    if at is None:
        return ""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
    name = zone or "UTC"
    try:
        tz = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        name, tz = "UTC", ZoneInfo("UTC")
    local = at.astimezone(tz)
    abbreviation = local.tzname() or ""
    if name in ("UTC", "Etc/UTC", "Etc/UCT", "UCT", "Zulu", "Etc/Zulu"):
        return f"{local:%Y-%m-%d %H:%M:%S} UTC"
    return f"{local:%Y-%m-%d %H:%M:%S} {abbreviation} ({name})"
