"""The housekeeping jobs of the running bridge: the daily purge and the monthly report run.

One worker step (every `reports.check_interval` seconds) purges once a day (old orders
and texts, the SMS pumping check's numbers, the REST API's Idempotency-Key answers) and, at
the start of a month, generates, archives and mails the previous month's reports.
The step always returns 0, so the worker waits for its tick between runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bridge.api.messages import purge_answers
from bridge.db.clock import utcnow
from bridge.db.store import Store
from bridge.intake.velocity_store import purge_numbers
from bridge.reports.monthly_run import monthly_due
from bridge.reports.settings import ReportSettings
from bridge.reports.store import purge

log = logging.getLogger("bridge.reports")


class ReportJobs:
    def __init__(
        self,
        settings: ReportSettings,
        store: Store,
        on_queued: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.store = store
        self.on_queued = on_queued
        self.clock = clock
        self.last_purge: datetime | None = None

    async def step(self) -> int:
        now = self.clock()
        s = self.settings
        if self.last_purge is None or now - self.last_purge >= timedelta(days=1):
            counts = await self.store.call(
                purge, now, s.retention_days, s.text_retention_days, False
            )
            await self.store.call(purge_numbers, now)  # SMS pumping check's recent numbers
            answers = await self.store.call(purge_answers, now)  # the REST API's, after a day
            if answers:
                log.info("purge: %d Idempotency-Key answers of the REST API deleted", answers)
            self.last_purge = now
            if any(counts.values()):
                log.info(
                    "purge: %d orders, %d mails deleted, texts of %d orders removed",
                    counts["orders"],
                    counts["mails"],
                    counts["texts"],
                )
        if s.monthly:
            queued = await self.store.call(
                monthly_due, now, s.monthly_recipients, s.monthly_archive_months
            )
            if queued:
                log.info("monthly reports: %d mail(s) queued", queued)
                self.on_queued()
        return 0
