"""When to try again, and how long to wait for a receipt: backoff with a floor, ceiling, lifetime.

Pure code. The wait before the next attempt is the item's age (doubling it), at least
`minimum` and at most `maximum`; once the item is older than `lifetime` there is no
next attempt and the caller gives up (order `expired`, notice `failed`).
`receipt_deadline`: when a submitted order stops waiting for its final report.
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


def receipt_deadline(
    submitted_at: datetime,
    expires_at: datetime | None,
    *,
    timeout: float | None,
    grace: float,
    validity: float = 172_800.0,
) -> datetime:
    """Until when a submitted order waits for its final delivery report.

    `timeout` seconds after submission when the SMSC sets one; else the end of the
    order's validity (`expires_at`, or `validity` seconds after submission) plus `grace`:
    the SMSC gives up on the message at the end of its validity and reports that.
    """
    if timeout is not None:
        return submitted_at + timedelta(seconds=timeout)
    end = expires_at if expires_at is not None else submitted_at + timedelta(seconds=validity)
    return max(end, submitted_at) + timedelta(seconds=grace)
