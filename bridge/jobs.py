"""The housekeeping jobs of the running bridge: the daily purge and the monthly report run.

One worker step (every `reports.check_interval` seconds) purges once a day (`purge_all`)
and, at the start of a month, generates, archives and mails the previous month's reports.
The step always returns 0, so the worker waits for its tick between runs.

The retention rules, written out as one list (`purge_all`); each domain owns its rule
(its tables, its SQL), and a table that grows with traffic has one
(`tests/integration/test_retention.py` checks it). `retention_days` (92) is how long the
bridge keeps what it did; `text_retention_days`, when shorter, how long it keeps what
people wrote: texts are blanked (orders, inbound SMS) and the rows that exist only to
carry one are deleted (notices, pushes, SMPP deliver_sm) at that age.

1. orders past retention, with their parts, history, mails and receipts; order texts
   blanked earlier (`bridge.reports.store.purge`);
2. inbound SMS past retention, their texts blanked earlier; run-out reply assignments;
3. the auto-reply log;
4. notices, pushes and SMPP deliver_sm that were sent or given up;
5. the SMS pumping check's numbers and the REST API's Idempotency-Key answers (their own
   short windows).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import Connection

from bridge.api.messages import purge_answers
from bridge.db.clock import utcnow
from bridge.db.store import Store
from bridge.inbound.actions_store import purge_autoreply_log, purge_confirmation_log
from bridge.inbound.store import purge_inbound
from bridge.intake.velocity_store import purge_numbers
from bridge.notices.queue import purge_notices
from bridge.push.queue import purge_pushes
from bridge.reports.monthly_run import monthly_due
from bridge.reports.settings import ReportSettings
from bridge.reports.store import purge as purge_orders
from bridge.smpp_outbox.queue import purge_outbox

log = logging.getLogger("bridge.reports")


def purge_all(
    conn: Connection, now: datetime, retention_days: int, text_days: int = 0, dry_run: bool = False
) -> dict[str, int]:
    """Apply every retention rule (one transaction); how many rows each deleted or blanked
    (with `dry_run`: would, and nothing changes)."""
    cut = now - timedelta(days=retention_days)
    text_cut = now - timedelta(days=text_days) if 0 < text_days < retention_days else cut
    counts = purge_orders(conn, now, retention_days, text_days, dry_run)
    counts.update(purge_inbound(conn, cut, text_cut, dry_run=dry_run))
    counts["autoreply_log"] = purge_autoreply_log(conn, cut, dry_run=dry_run)
    counts["confirmation_log"] = purge_confirmation_log(conn, cut, dry_run=dry_run)
    counts["notices"] = purge_notices(conn, text_cut, dry_run=dry_run)
    counts["pushes"] = purge_pushes(conn, text_cut, dry_run=dry_run)
    counts["smpp_deliver_sm"] = purge_outbox(conn, text_cut, dry_run=dry_run)
    if not dry_run:
        counts["pumping_numbers"] = purge_numbers(conn, now)
        counts["api_answers"] = purge_answers(conn, now)
    return counts


_WHAT: Final = {
    "texts": "order texts blanked",
    "inbound": "inbound SMS",
    "inbound_texts": "inbound SMS texts blanked",
    "assignments": "reply assignments",
    "autoreply_log": "auto-reply log entries",
    "confirmation_log": "STOP/START confirmation log entries",
    "smpp_deliver_sm": "SMPP deliver_sm",
    "pumping_numbers": "numbers of the SMS pumping check",
    "api_answers": "Idempotency-Key answers",
}


def describe(counts: dict[str, int]) -> str:
    """`5 orders, 3 mails, …` of the counts that are not 0 (or `nothing`)."""
    shown = [f"{n} {_WHAT.get(name, name)}" for name, n in counts.items() if n]
    return ", ".join(shown) or "nothing"


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
            counts = await self.store.call_slow(
                purge_all, now, s.retention_days, s.text_retention_days, False
            )
            self.last_purge = now
            if any(counts.values()):
                log.info("purge: %s", describe(counts))
        if s.monthly:
            queued = await self.store.call_slow(
                monthly_due, now, s.monthly_recipients, s.monthly_archive_months
            )
            if queued:
                log.info("monthly reports: %d mail(s) queued", queued)
                self.on_queued()
        return 0
