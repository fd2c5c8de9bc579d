"""The daily purge deletes the REST API's Idempotency-Key answers once they are a day old."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update

from bridge.api.tables import ApiIdempotency
from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.store import run_sync
from bridge.jobs import ReportJobs
from tests.e2e.test_api import api


async def test_answers_older_than_a_day_are_purged_and_newer_ones_kept(tmp_path: Path) -> None:
    async with api(tmp_path) as a:
        store = a.bridge.store
        assert store is not None
        body = {"to": ["+491701234567"], "text": "once"}
        old, new = ({**a.demo, "Idempotency-Key": k} for k in ("yesterday", "an-hour-ago"))
        first = await a.http.post("/api/v1/messages", json=body, headers=old)
        fresh = await a.http.post("/api/v1/messages", json=body, headers=new)
        assert first.status_code == fresh.status_code == 201

        def age(conn: Any, key: str, hours: float) -> None:
            idem = table(ApiIdempotency)
            conn.execute(
                update(idem)
                .where(idem.c.idem_key == key)
                .values(created_at=utcnow() - timedelta(hours=hours))
            )

        run_sync(store.engine, age, "yesterday", 25)
        run_sync(store.engine, age, "an-hour-ago", 23)
        again = await a.http.post("/api/v1/messages", json=body, headers=old)
        assert again.headers.get("idempotent-replayed") == "true"  # kept until the purge

        await ReportJobs(a.settings.reports, store).step()  # the daily purge
        # The day-old answer is gone: the same key sends again, a new message.
        after = await a.http.post("/api/v1/messages", json=body, headers=old)
        assert after.status_code == 201 and "idempotent-replayed" not in after.headers
        assert after.json()["mail_id"] != first.json()["mail_id"]
        # ... and one younger than a day still replays.
        kept = await a.http.post("/api/v1/messages", json=body, headers=new)
        assert kept.headers.get("idempotent-replayed") == "true"
        assert kept.json() == fresh.json()
