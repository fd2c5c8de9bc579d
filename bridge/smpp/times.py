"""SMPP time strings: validity_period and schedule_delivery_time, relative or absolute.

Pure. Absolute: `YYMMDDhhmmsstnnp` (t tenths, nn quarter hours from UTC, p '+' or '-');
we always write UTC, so `...000+`. Relative: `YYMMDDhhmmss000R` counting years, months,
days, hours, minutes and seconds from now; we use days (up to 99) and below.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

MAX_RELATIVE: Final = 99 * 86400 + 23 * 3600 + 59 * 60 + 59


def absolute_time(at: datetime) -> str:
    """`at` (aware; naive is taken as UTC) in SMPP absolute format, in UTC."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.strftime("%y%m%d%H%M%S") + "000+"


def relative_time(seconds: float) -> str:
    """A duration in SMPP relative format (at least 1 s, capped at 99 days 23:59:59)."""
    s = min(MAX_RELATIVE, max(1, int(seconds)))
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"0000{days:02d}{hours:02d}{minutes:02d}{secs:02d}000R"


def validity_field(seconds: float | None, now: datetime, style: str) -> str:
    """The validity_period for a validity of `seconds` from `now` ('' = SMSC default)."""
    if seconds is None or style == "none":
        return ""
    if style == "absolute":
        return absolute_time(datetime.fromtimestamp(now.timestamp() + seconds, UTC))
    return relative_time(seconds)


def schedule_field(at: datetime | None, now: datetime) -> str:
    """The schedule_delivery_time for `at` ('' = now, also when `at` is not in the future)."""
    if at is None:
        return ""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
    if at <= now:
        return ""
    return absolute_time(at)
