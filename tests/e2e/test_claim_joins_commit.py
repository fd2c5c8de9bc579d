"""A mail's orders are claimed in the transaction that writes them, on SQLite and on
PostgreSQL: the intake wakes the dispatcher as it queues the mail, and the dispatcher's
claim, in the same lane of group commits (`bridge/mt/lanes.py`), runs after the mail's
insert in that transaction. One transaction before the `submit_sm`, not two."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Any

import aiosmtplib
from sqlalchemy import event

from bridge.settings import Settings
from tests.conftest import make_settings
from tests.helpers import maildir_messages, make_mail, running_bridge, wait_for

# The order rows a transaction leaves as it commits: (written, claimed).
_ORDERS = 'SELECT count(*), count(CASE WHEN attempts > 0 THEN 1 END) FROM "order"'


def _quiet(settings: Settings, database_url: str) -> Settings:
    """No poll ticks: on SQLite's one lane, a claim or notice step that ticks while a
    mail is being committed would hold the commit, and the mail's insert would start the
    next one alone."""
    return settings.model_copy(
        update={
            "database_url": database_url,
            "dispatch": settings.dispatch.model_copy(update={"poll_interval": 60.0}),
            "mailer": settings.mailer.model_copy(update={"poll_interval": 60.0}),
        }
    )


def _status_mails(settings: Settings, n: int) -> bool:
    """At least `n` status mails are written (the demo user gets one per SMS)."""
    return len(maildir_messages(settings.mailer.maildir)) >= n


async def test_a_mails_orders_are_claimed_in_the_commit_that_writes_them(
    tmp_path: Path, bridge_database: str
) -> None:
    settings = _quiet(make_settings(tmp_path), bridge_database)
    seen: list[tuple[int, int]] = []  # per commit, the orders written and claimed by then
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None
        engine = bridge.store.engine

        def before_commit(conn: Any) -> None:
            written, claimed = conn.exec_driver_sql(_ORDERS).one()
            seen.append((written, claimed))

        event.listen(engine, "commit", before_commit)
        try:
            # One at a time, each once the one before is all done. The first is sent before
            # the sandbox's bind may be up (then the dispatcher has no room yet to claim).
            for n in range(1, 5):
                number = f"+49170123456{n}"
                async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
                    await smtp.sendmail("demo@example.com", [f"{number}@eu.rsms.net"], make_mail())
                await wait_for(partial(_status_mails, settings, n))
                await asyncio.sleep(0.3)  # the status mail's own commit, and the rest, done
        finally:
            event.remove(engine, "commit", before_commit)
    # The first commit that holds each new order has claimed it already.
    firsts = {written: claimed for written, claimed in reversed(seen)}
    assert {n: firsts[n] for n in (2, 3, 4)} == {2: 2, 3: 3, 4: 4}, str(seen)
