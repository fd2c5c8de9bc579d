"""The clock every table uses: aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, as the aware UTC datetime all tables store."""
    return datetime.now(UTC)
