"""When to try again: Postfix's age-doubling backoff with a floor, a ceiling and a lifetime.

Pure code. The wait before the next attempt is the item's age (doubling it), at least
`minimum` and at most `maximum`; once the item is older than `lifetime` there is no
next attempt and the caller gives up (order `expired`, notice `failed`).
"""

from __future__ import annotations

from datetime import datetime, timedelta


def next_attempt(
    first_seen: datetime,
    now: datetime,
    *,
    minimum: float,
    maximum: float,
    lifetime: float,
    expires_at: datetime | None = None,
) -> datetime | None:
    """The time of the next attempt, or None when the item has run out of time."""
    age = (now - first_seen).total_seconds()
    if age >= lifetime:
        return None
    wait = min(max(age, minimum), maximum)
    at = now + timedelta(seconds=wait)
    limit = first_seen + timedelta(seconds=lifetime)
    if expires_at is not None:
        limit = min(limit, expires_at)
    if now >= limit:
        return None
    return min(at, limit)
