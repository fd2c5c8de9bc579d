"""Flow control at the doors, on a real bridge and real clients: while the bridge's
process is saturated (here by threads hashing outside the GIL, real CPU work in the same
process), a new mail waits before its MAIL is answered, a submit_sm from an SMPP client
before it is taken, a REST API send before it is taken, each counted by door; when the
process is idle, nothing waits."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import aiosmtplib
import httpx
import pytest
from sqlalchemy import create_engine, text

from bridge.api.keys import add_key
from bridge.app import Bridge, Share
from bridge.db.store import run_sync
from bridge.http.settings import HttpSettings
from bridge.intake.pacing import MIN_COMMITS, SAMPLE_EVERY, Door, SharedLoad, usable_cpus
from bridge.metrics import Metrics
from bridge.settings import Settings
from bridge.smpp_server.settings import SmppServerSettings
from tests.conftest import make_settings
from tests.helpers import make_mail, running_bridge
from tests.peers.esme import BindType
from tests.peers.esme_clients import open_esme
from tests.peers.postgres import throwaway_postgres


def _hog(stop: threading.Event) -> None:
    data = b"\0" * (4 << 20)  # hashlib lets go of the GIL for data this large
    while not stop.is_set():
        hashlib.sha256(data).digest()


@contextmanager
def _saturated() -> Iterator[None]:
    """Every CPU this process may use busy, by threads doing real work outside the GIL."""
    stop = threading.Event()
    hogs = [threading.Thread(target=_hog, args=(stop,)) for _ in range(usable_cpus())]
    for hog in hogs:
        hog.start()
    try:
        yield
    finally:
        stop.set()
        for hog in hogs:
            hog.join()


def _paced(settings: Settings, busy: float = 0.25, commit_wait: float = 0.0) -> Settings:
    """Flow control on, with a low mark (this process's own work, the tests' clients,
    stays below it); by the CPU only unless `commit_wait` is given."""
    server = settings.server.model_copy(
        update={"in_flow_busy": busy, "in_flow_delay": 0.6, "in_flow_commit_wait": commit_wait}
    )
    return settings.model_copy(update={"server": server})


# Pauses before the messages that must find the process idle. The pacer reads the load
# when a message comes, over the time since its last reading: the start's work (a bind,
# the API key's hash, the first mail's parse) may still weigh in the first reading after
# a short pause on a slow machine. An idle message is tried again after a longer pause;
# one that a process idle that long still paces fails the test.
IDLE_PAUSES = (0.6, 2.0, 4.0)


async def _idle_messages(
    metrics: Metrics, doors: tuple[Door, ...], send: Callable[[], Awaitable[None]]
) -> None:
    """`send` after an idle pause is not paced at any of `doors`: tried after each of
    IDLE_PAUSES until one is not (a paced one still counts, and is taken)."""
    for pause in IDLE_PAUSES:
        await asyncio.sleep(pause)
        before = [_count(metrics, door) for door in doors]
        await send()
        if [_count(metrics, door) for door in doors] == before:
            return
    raise AssertionError(f"paced after {IDLE_PAUSES[-1]} s idle: {before}")


def _count(metrics: Metrics, door: Door) -> float:
    return float(metrics.intake_paced.labels(door.value)._value.get())


def _seconds(metrics: Metrics, door: Door) -> float:
    return float(metrics.intake_paced_seconds.labels(door.value)._value.get())


async def test_a_saturated_process_makes_new_mail_wait_and_an_idle_one_does_not(
    tmp_path: Path,
) -> None:
    settings = _paced(make_settings(tmp_path))
    async with running_bridge(settings) as (bridge, ep):
        m = bridge.metrics
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            await smtp.sendmail("demo@example.com", ["+491701234567@eu.rsms.net"], make_mail())

            async def mail() -> None:  # idle since the first mail: no pause for the next
                await smtp.sendmail("demo@example.com", ["+491701234568@eu.rsms.net"], make_mail())

            await _idle_messages(m, (Door.SMTP,), mail)
            paced, before = _count(m, Door.SMTP), _seconds(m, Door.SMTP)

            with _saturated():
                await asyncio.sleep(1.0)  # the load, read at the next MAIL, is the hogs' CPU
                started = time.monotonic()
                await smtp.mail("demo@example.com")
                waited = time.monotonic() - started
            assert _count(m, Door.SMTP) == paced + 1
            # The pause grows with the process's share of the CPU, which other work on the
            # machine lowers (how much: tests/unit/test_intake_pacing.py); the client waits it.
            pause = _seconds(m, Door.SMTP) - before
            assert 0 < pause <= waited, (pause, waited)
            await smtp.rset()


async def test_a_saturated_process_makes_smpp_submits_and_api_sends_wait_too(
    tmp_path: Path,
) -> None:
    """The SMPP server and the REST API wait on the same process's pacer: a client we did
    not write (smpplib) gets its submit_sm answered late, an API client its 201 late; both
    are taken (committed and answered as usual), and idle, neither waits."""
    settings = _paced(
        make_settings(
            tmp_path,
            smpp_server=SmppServerSettings(enabled=True, port=0),
            http=HttpSettings(enabled=True, listen="127.0.0.1:0"),
        )
    )
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None and ep.smpp is not None and ep.http is not None
        key = run_sync(bridge.store.engine, lambda conn: add_key(conn, "demo", "app"))
        m = bridge.metrics
        auth = {"Authorization": f"Bearer {key}"}
        async with (
            open_esme("smpplib", *ep.smpp) as esme,
            httpx.AsyncClient(base_url=f"http://{ep.http[0]}:{ep.http[1]}") as api,
        ):
            assert (await esme.bind(BindType.TRANSCEIVER, "demo", "demo")).ok

            async def submit(to: str) -> float:
                started = time.monotonic()
                [result] = await esme.submit("+4915550000001", to, "hello")
                assert result.status == 0, result
                return time.monotonic() - started

            async def send(to: str) -> float:
                started = time.monotonic()
                body = {"to": [to], "text": "hi"}
                r = await api.post("/api/v1/messages", json=body, headers=auth)
                assert r.status_code == 201, r.text
                return time.monotonic() - started

            await submit("+491701234567")
            await send("+491701234568")

            async def both() -> None:  # idle: nothing waits
                await submit("+491701234569")
                await send("+491701234570")

            await _idle_messages(m, (Door.SMPP, Door.API), both)
            paced = (_count(m, Door.SMPP), _count(m, Door.API))
            before = (_seconds(m, Door.SMPP), _seconds(m, Door.API))

            with _saturated():
                await asyncio.sleep(1.0)
                submitted = await submit("+491701234571")
                sent = await send("+491701234572")
            assert (_count(m, Door.SMPP), _count(m, Door.API)) == (paced[0] + 1, paced[1] + 1)
            pauses = (_seconds(m, Door.SMPP) - before[0], _seconds(m, Door.API) - before[1])
            assert 0 < pauses[0] <= submitted and 0 < pauses[1] <= sent, (pauses, submitted, sent)
            assert _count(m, Door.SMTP) == 0


@contextmanager
def _write_lock_held(database: Path) -> Iterator[None]:
    """Another connection (as another process would) holds SQLite's write lock."""
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


async def test_commits_that_wait_make_new_mail_wait_though_the_cpu_idles(tmp_path: Path) -> None:
    """The database falling behind while the CPU has room (here: another connection holds
    SQLite's write lock, as a second process would): mails accepted meanwhile waited for
    their commits, so the next MAIL waits too; commits that do not wait pace nothing."""
    # mark: commits waiting 50 ms on average (0.5 x 100 ms; a slow disk's fsync stays
    # below it), those behind the lock ~1 s; the CPU stays below 0.5
    settings = _paced(make_settings(tmp_path), busy=0.5, commit_wait=0.1)
    await _commits_wait_then_mail(settings, lambda: _write_lock_held(tmp_path / "bridge.db"))


@pytest.mark.postgres
async def test_on_postgresql_commits_that_wait_longer_than_usual_pace_by_default(
    tmp_path: Path,
) -> None:
    """PostgreSQL with `in_flow_commit_wait` unset: no fixed mark fits every server, so
    the mark follows the usual wait this process saw (commits at idle), and commits that
    wait far longer (another connection locks the table the intake writes) pace the next
    MAIL; before, the database's share was off on PostgreSQL."""
    with throwaway_postgres({}) as url:  # durable settings, as the bridge requires
        settings = make_settings(tmp_path, database_url=url)
        server = settings.server.model_copy(update={"in_flow_busy": 0.5, "in_flow_delay": 0.6})
        assert server.in_flow_commit_wait is None
        await _commits_wait_then_mail(
            settings.model_copy(update={"server": server}), lambda: _table_locked(url, "mail")
        )


async def _commits_wait_then_mail(
    settings: Settings, held: Callable[[], AbstractContextManager[None]]
) -> None:
    """Eight mails committed one after the other while the database keeps up, then the
    next MAIL is not paced; eight more at once while `held()` makes their commit wait
    ~1 s, then it is."""

    async def send_all(first: int, together: bool) -> None:
        # new recipients each time: a repeated mail is a duplicate, which writes nothing
        sends = [
            aiosmtplib.send(
                make_mail(),
                sender="demo@example.com",
                recipients=[f"+49170123{n:04d}@eu.rsms.net"],
                hostname=ep.smtp[0],
                port=ep.smtp[1],
            )
            for n in range(first, first + MIN_COMMITS)
        ]
        if together:  # one commit each, in one group commit
            await asyncio.gather(*sends)
            return
        for send in sends:  # each commit alone: none waits for another's
            await send

    async with running_bridge(settings) as (bridge, ep):
        m = bridge.metrics
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            await smtp.mail("demo@example.com")  # the first reading
            await smtp.rset()
            await send_all(0, together=False)  # commits that do not wait
            await asyncio.sleep(SAMPLE_EVERY)
            await smtp.mail("demo@example.com")
            await smtp.rset()
            assert _count(m, Door.SMTP) == 0

            with held():
                sending = asyncio.create_task(send_all(MIN_COMMITS, together=True))
                await asyncio.sleep(1.0)  # the mails wait for their commit
            await sending
            before = _count(m, Door.SMTP)  # their own MAILs came before the waits were known
            started = time.monotonic()
            await smtp.mail("demo@example.com")
            assert time.monotonic() - started >= 0.009  # at least the first pause (10 ms)
            assert _count(m, Door.SMTP) == before + 1
            await smtp.rset()


@contextmanager
def _table_locked(url: str, table: str) -> Iterator[None]:
    """Another connection holds a lock on PostgreSQL's `table` that makes writes to it wait."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(text(f'LOCK TABLE "{table}" IN EXCLUSIVE MODE'))
            yield
    finally:
        engine.dispose()


async def test_the_first_of_several_processes_publishes_its_load_and_the_others_pace_by_it(
    tmp_path: Path,
) -> None:
    """`[server] processes = 2` as the parent wires it (`bridge/processes.py`), both bridges
    in this process: the first (binds, dispatch, receipts) publishes its real load in the
    shared page; the other's SMTP intake, itself idle, paces new mail while the page says
    the first is saturated, and no longer once it says the first is idle."""
    owner_end, others_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    load = SharedLoad()
    # the mark high: this process's own load (this test, both bridges) stays below it
    settings = _paced(make_settings(tmp_path), busy=0.9)
    first = Bridge(settings, share=Share(0, 2, owner_end, smtp=False, load=load))
    other = Bridge(settings, share=Share(1, 2, others_end, load=load))
    try:
        await first.start()
        ep = await other.start()
        # only the first writes the page: the other's own load must not overwrite it
        assert "load" in first.workers and "load" not in other.workers
        with _saturated():
            await asyncio.sleep(1.0)
            assert load.read() > 0.5  # the first's worker read the CPU the hogs used
        await first.stop(grace=2.0)  # from here on the page says what this test writes
        m = other.metrics
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            load.write(0.0)
            await smtp.mail("demo@example.com")  # the other's first reading
            await smtp.rset()
            await asyncio.sleep(SAMPLE_EVERY)
            load.write(1.0)  # the first saturated; the other idle
            started = time.monotonic()
            await smtp.mail("demo@example.com")
            assert time.monotonic() - started >= 0.009  # at least the first pause (10 ms)
            assert _count(m, Door.SMTP) == 1
            await smtp.rset()
            await asyncio.sleep(SAMPLE_EVERY)
            load.write(0.0)  # the first idle again: the pause is gone at the next reading
            await smtp.mail("demo@example.com")
            assert _count(m, Door.SMTP) == 1
            await smtp.rset()
    finally:
        await other.stop(grace=2.0)
        await first.stop(grace=2.0)
        owner_end.close()
        others_end.close()
