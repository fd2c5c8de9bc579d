"""The `[reports]` table: how long orders are kept, and the monthly report archive."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from bridge.sections import Seconds, Section


class ReportSettings(Section):
    """Order reporting: how long orders are kept, and the monthly report archive."""

    retention_days: Annotated[int, Field(ge=1)] = 92
    text_retention_days: Annotated[int, Field(ge=0)] = 0
    monthly: bool = True
    monthly_archive_months: Annotated[int, Field(ge=1)] = 6
    monthly_recipients: tuple[str, ...] = ()
    check_interval: Seconds = 3600.0
