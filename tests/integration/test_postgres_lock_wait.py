"""PostgreSQL: a write that waits for a lock gives up as SQLite's does, with a 4xx.

On SQLite a transaction waits at most `LOCK_WAIT` seconds for the write lock
(test_sqlite_lock.py). On PostgreSQL a lock held elsewhere — an operator's `LOCK TABLE`,
a schema migration of a newer instance waiting for its `ACCESS EXCLUSIVE` lock, a
forgotten open transaction — made the intake's commit wait without end: the SMTP client
waited for the end-of-data reply, gave up, and sent the mail again later, while the first
copy was committed once the lock went — the SMS twice. Now the commit gives up after
`LOCK_WAIT` (PostgreSQL's `lock_timeout`) at every door — SMTP `451`, REST API `503`
with Retry-After, SMPP `ESME_RSYSERR` — nothing was stored, and each client's retry after
the lock is gone is the one copy. A migration still waits for its
locks as long as it takes.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import aiosmtplib
import httpx
import psycopg
import pytest
from sqlalchemy import text

from bridge.api.keys import add_key
from bridge.db.engine import (
    LOCK_WAIT,
    MIGRATION_LOCK,
    current_revision,
    head_revision,
    open_engine,
    upgrade,
)
from bridge.db.store import run_sync
from bridge.http.settings import HttpSettings
from bridge.smpp_server.settings import SmppServerSettings
from tests.conftest import fresh_postgres, make_settings
from tests.helpers import db_rows, make_mail, running_bridge
from tests.peers.esme import BindType
from tests.peers.esme_clients import open_esme

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url(durable_postgres_server: str) -> str:
    """A new database on the throwaway PostgreSQL (SQLite's lock wait has its own test:
    tests/integration/test_sqlite_lock.py)."""
    return fresh_postgres(durable_postgres_server)


PHONE = "+491701234567"
TO = f"{PHONE}@eu.rsms.net"


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _codes(exc: aiosmtplib.SMTPException) -> list[int]:
    """The reply codes of a refusal at RCPT (every recipient) or at DATA."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return [r.code for r in exc.recipients]
    return [exc.code] if isinstance(exc, aiosmtplib.SMTPResponseException) else []


async def test_a_commit_behind_a_held_lock_answers_451_and_the_retry_is_the_one_copy(
    tmp_path: Path, pg_url: str
) -> None:
    settings = make_settings(
        tmp_path,
        smpp_server=SmppServerSettings(enabled=True, port=0),
        http=HttpSettings(enabled=True, listen="127.0.0.1:0"),
    ).model_copy(update={"database_url": pg_url})
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None and ep.smpp is not None and ep.http is not None
        key = run_sync(bridge.store.engine, lambda conn: add_key(conn, "demo", "app"))
        mail = make_mail(to=TO, body="only once")
        api = httpx.AsyncClient(
            base_url=f"http://{ep.http[0]}:{ep.http[1]}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        body = {"to": [PHONE], "text": "only once, by API"}
        async with api, open_esme("smpplib", *ep.smpp) as esme:
            assert (await esme.bind(BindType.TRANSCEIVER, "demo", "demo")).ok
            with psycopg.connect(_psycopg_url(pg_url)) as holder:
                holder.execute('LOCK TABLE mail, "order" IN ACCESS EXCLUSIVE MODE')
                started = time.monotonic()
                async with aiosmtplib.SMTP(
                    hostname=ep.smtp[0], port=ep.smtp[1], timeout=60
                ) as smtp:
                    with pytest.raises(aiosmtplib.SMTPException) as refused:
                        await smtp.sendmail("demo@example.com", [TO], mail)
                assert _codes(refused.value) == [451], refused.value
                answer = await api.post("/api/v1/messages", json=body)
                assert answer.status_code == 503 and "retry-after" in answer.headers, answer.text
                [submitted] = await esme.submit("+4915550000001", PHONE, "only once, by SMPP")
                assert submitted.status == 0x08, submitted  # ESME_RSYSERR: sent again later
                waited = time.monotonic() - started
                assert waited < 3 * (LOCK_WAIT + 10), waited
                holder.rollback()  # the lock goes
            async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1], timeout=60) as smtp:
                await smtp.sendmail("demo@example.com", [TO], mail)
            assert (await api.post("/api/v1/messages", json=body)).status_code == 201
            [submitted] = await esme.submit("+4915550000001", PHONE, "only once, by SMPP")
            assert submitted.status == 0
        texts = [r[0] for r in db_rows(pg_url, 'SELECT text FROM "order" ORDER BY id')]
        assert sorted(texts) == ["only once", "only once, by API", "only once, by SMPP"]


def test_start_up_waits_for_the_migration_lock_as_long_as_it_takes(pg_url: str) -> None:
    """Instances starting together migrate in turn under an advisory lock: the second
    waits for the first however long its migration takes, not LOCK_WAIT."""
    engine = open_engine(pg_url)
    with engine.connect() as holder:  # "the first instance", migrating for LOCK_WAIT + 2 s
        holder.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})

        def finish() -> None:
            time.sleep(LOCK_WAIT + 2)
            holder.commit()

        first = threading.Thread(target=finish)
        first.start()
        started = time.monotonic()
        upgrade(engine)  # "the second instance"
        waited = time.monotonic() - started
        first.join()
    assert waited >= LOCK_WAIT + 1, waited
    assert current_revision(engine) == head_revision()
    engine.dispose()
