"""PostgreSQL that stops answering without closing its connections: calls fail in time.

A frozen database host, a disk that no longer completes writes, a proxy whose backend
went away, a synchronous standby that never confirms: the server's connections stay
open, its kernel acknowledges what the bridge sends and answers TCP keepalives, and no
answer comes — libpq's `tcp_user_timeout` and keepalives never fire. The bridge's calls
waited without end: a MAIL or RCPT was answered only by the SMTP session's own timeout
(`421 4.4.2 Nothing came whole within 120 s`, blaming the client), the database threads
stayed stuck, and a standby promoted meanwhile was never used. Each call now gets
`database_timeout` seconds (`bridge/db/deadline.py`); then its connection is cut and it
fails as a lost connection does: 451 at the SMTP door, 503 at the REST API, a transient
SMPP status, and the bridge goes on once the server answers again.

The server is frozen for real: SIGSTOP to its whole process group (`PgServer.frozen`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiosmtplib
import httpx
import pytest
from sqlalchemy import Connection, text

from bridge.api.keys import add_key
from bridge.db.engine import open_engine
from bridge.db.store import Store, run_sync
from bridge.errors import StorageUnreachable
from bridge.http.settings import HttpSettings
from bridge.smpp_server.settings import SmppServerSettings
from tests.conftest import make_settings
from tests.helpers import db_rows, make_mail, running_bridge
from tests.peers.esme import BindType
from tests.peers.esme_clients import open_esme
from tests.peers.postgres import DURABLE, PgServer, throwaway_server

pytestmark = pytest.mark.postgres

PHONE = "+491701234567"
TO = f"{PHONE}@eu.rsms.net"
BOUND = 2.0  # database_timeout in these tests (seconds)
CONNECT_TIMEOUT = 2  # libpq's connect_timeout as the bridge sets it for BOUND (bridge/db/engine.py)


@pytest.fixture(scope="module")
def server() -> Iterator[PgServer]:
    """A server of this module's own (frozen by its tests; the session's is shared)."""
    with throwaway_server(DURABLE) as pg:
        yield pg


def _one(conn: Connection) -> int:
    return int(conn.execute(text("SELECT 1")).scalar_one())


def _batch(conn: Connection, items: list[int]) -> list[int]:
    return [int(conn.execute(text("SELECT :x"), {"x": i}).scalar_one()) for i in items]


def _sleep(seconds: float):  # type: ignore[no-untyped-def]
    def sleep(conn: Connection) -> str:
        return str(conn.execute(text("SELECT pg_sleep(:s)::text"), {"s": seconds}).scalar())

    return sleep


async def _fails_in_time(
    call: object, *, connects: bool = False, kept: bool = False
) -> StorageUnreachable:
    """`call` fails as unreachable: cut after BOUND seconds, or, when it needs a new
    connection (`connects`: an earlier call's was cut), after libpq's connect_timeout.
    `kept`: on the first thread's kept connection, if the call goes there: the executor
    may have started a thread per call, and one without a connection connects (and
    times out); and the kept one is pinged first when it lay idle over PING_IDLE (1 s;
    a busy machine's pause will do): the ping is cut after BOUND seconds and a new
    connection tried (after a failover it reaches the new server), which does not come
    either: the call fails after both."""
    started = time.monotonic()
    with pytest.raises(StorageUnreachable) as failed:
        await asyncio.wait_for(call, 30)  # type: ignore[arg-type]  # old code: no answer at all
    waited = time.monotonic() - started
    cut = f"did not answer within {BOUND:g} s" in str(failed.value)
    if connects:
        assert waited < CONNECT_TIMEOUT + 5, waited
        assert "timeout" in str(failed.value), failed.value
    elif kept and not cut:  # a new connection timed out (after a ping was cut, or not)
        assert CONNECT_TIMEOUT <= waited < BOUND + CONNECT_TIMEOUT + 5, waited
        assert "timeout" in str(failed.value), failed.value
    else:
        assert BOUND <= waited < BOUND + 5, waited
        assert cut, failed.value
    return failed.value


async def test_a_frozen_server_fails_each_kind_of_call_in_time_and_the_store_goes_on(
    server: PgServer,
) -> None:
    store = Store(open_engine(server.url(), timeout=BOUND), timeout=BOUND)
    try:
        assert await store.call(_one) == 1
        assert await store.grouped(_batch, 7) == 7
        with server.frozen():
            await _fails_in_time(store.call(_one), kept=True)  # the one kept since the start
            # each kind of call, side by side: every database thread has dropped its
            # connection (one was cut), so each needs a new one, which does not come
            calls = [store.call(_one), store.read(_one), store.grouped(_batch, 8)]
            await asyncio.gather(*(_fails_in_time(call, connects=True) for call in calls))
        # the server answers again: new connections, every kind of call works
        assert await store.call(_one) == 1
        assert await store.read(_one) == 1
        assert await store.grouped(_batch, 9) == 9
    finally:
        await store.close()


async def test_a_call_longer_than_the_bound_is_cut_and_a_slow_job_is_not(server: PgServer) -> None:
    """The bound is the client's (a server that runs, slowly, is cut too); the daily purge
    and the monthly reports (`call_slow`) get an hour."""
    store = Store(open_engine(server.url(), timeout=BOUND), timeout=BOUND)
    try:
        await _fails_in_time(store.call(_sleep(BOUND + 3)))
        assert await store.call_slow(_sleep(BOUND + 1)) == ""
        assert await store.call(_one) == 1
    finally:
        await store.close()


def _codes(exc: aiosmtplib.SMTPException) -> list[int]:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return [r.code for r in exc.recipients]
    return [exc.code] if isinstance(exc, aiosmtplib.SMTPResponseException) else []


async def test_every_door_answers_a_frozen_database_with_a_temporary_refusal(
    tmp_path: Path, server: PgServer
) -> None:
    """SMTP (at RCPT, and at the data's end, with the server frozen after RCPT), the REST
    API and the SMPP server each refuse for now within the bound, not after the client's
    own timeout; once the server answers again each retry is accepted, once."""
    database = f"frozen_{int(time.time() * 1000)}"
    server.query(f"CREATE DATABASE {database}")
    url = server.url(database)
    settings = make_settings(
        tmp_path,
        smpp_server=SmppServerSettings(enabled=True, port=0),
        http=HttpSettings(enabled=True, listen="127.0.0.1:0"),
    ).model_copy(update={"database_url": url, "database_timeout": BOUND})
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None and ep.smpp is not None and ep.http is not None
        key = run_sync(bridge.store.engine, lambda conn: add_key(conn, "demo", "app"))
        api = httpx.AsyncClient(
            base_url=f"http://{ep.http[0]}:{ep.http[1]}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        body = {"to": [PHONE], "text": "once, by API"}
        at_rcpt = make_mail(to=TO, body="once, refused at RCPT", message_id="<rcpt@client>")
        at_data = make_mail(to=TO, body="once, refused at DATA", message_id="<data@client>")
        async with api, open_esme("smpplib", *ep.smpp) as esme:
            assert (await esme.bind(BindType.TRANSCEIVER, "demo", "demo")).ok
            async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1], timeout=60) as smtp:
                await smtp.ehlo()
                await smtp.mail("demo@example.com")
                await smtp.rcpt(TO)
                with server.frozen():
                    started = time.monotonic()
                    with pytest.raises(aiosmtplib.SMTPException) as refused:
                        await smtp.data(at_data)
                    assert _codes(refused.value) == [451], refused.value
                    assert "4.3.0" in str(refused.value), refused.value
                    with pytest.raises(aiosmtplib.SMTPException) as refused:
                        await smtp.sendmail("demo@example.com", [TO], at_rcpt)
                    assert _codes(refused.value) == [451], refused.value
                    answer = await api.post("/api/v1/messages", json=body)
                    assert answer.status_code == 503, answer.text
                    assert "retry-after" in answer.headers
                    [submitted] = await esme.submit("+4915550000001", PHONE, "once, by SMPP")
                    assert submitted.status == 0x08, submitted  # ESME_RSYSERR: sent again
                    waited = time.monotonic() - started
                    assert waited < 4 * (BOUND + 5), waited
            # the server answers again: each client's retry is accepted
            async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1], timeout=60) as smtp:
                await smtp.sendmail("demo@example.com", [TO], at_data)
                await smtp.sendmail("demo@example.com", [TO], at_rcpt)
            assert (await api.post("/api/v1/messages", json=body)).status_code == 201
            [submitted] = await esme.submit("+4915550000001", PHONE, "once, by SMPP")
            assert submitted.status == 0
        texts = sorted(r[0] for r in db_rows(url, 'SELECT text FROM "order"'))
        assert texts == [
            "once, by API",
            "once, by SMPP",
            "once, refused at DATA",
            "once, refused at RCPT",
        ], texts


async def test_a_session_timeout_while_the_bridge_works_names_the_fault_as_ours(
    tmp_path: Path, server: PgServer
) -> None:
    """With `[smtp] timeout` shorter than the database's bound, the session's timer runs
    out while the bridge is still working on its answer: the client is told the fault is
    on this side (421 4.3.0), not that nothing came from it (421 4.4.2)."""
    database = f"frozen_{int(time.time() * 1000)}"
    server.query(f"CREATE DATABASE {database}")
    base = make_settings(tmp_path)
    settings = base.model_copy(
        update={
            "database_url": server.url(database),
            "database_timeout": 10.0,
            "smtp": base.smtp.model_copy(update={"timeout": 1.0}),
        }
    )
    async with running_bridge(settings) as (_bridge, ep):
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1], timeout=30) as smtp:
            await smtp.ehlo()
            await smtp.mail("demo@example.com")
            with server.frozen():
                with pytest.raises(aiosmtplib.SMTPResponseException) as closed:
                    await smtp.rcpt(TO)
        assert closed.value.code == 421, closed.value
        assert closed.value.message.startswith("4.3.0 No answer to your RCPT within 1 s"), (
            closed.value.message
        )
