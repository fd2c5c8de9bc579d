"""SQLite's write lock: transactions take it at their BEGIN (IMMEDIATE) and wait for it in
short steps, reads on a `deferred` connection take none; checked with several processes or
threads, each with its own connection to one database file."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from bridge.db import engine as engine_module
from bridge.db.engine import LOCK_WAIT, deferred_engine, head_revision, open_engine
from bridge.db.store import Store, run_sync
from bridge.errors import StorageUnavailable, StorageUnreachable

ROUNDS = 60  # transactions per process


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'lock.db'}"
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counter VALUES (1, 0)"))
        conn.execute(text("CREATE TABLE item (k INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO item VALUES (1, 0), (2, 0), (3, 0)"))
    engine.dispose()
    yield url


def _raw(url: str) -> sqlite3.Connection:
    """A connection of the sqlite3 driver's own, with no busy wait: another process."""
    return sqlite3.connect(
        url.removeprefix("sqlite:///"), isolation_level=None, timeout=0, check_same_thread=False
    )


def _increment(conn: Connection) -> None:
    """Read a value, then write it plus one (a lost update if the read is not in the lock)."""
    value = conn.execute(text("SELECT v FROM counter WHERE k = 1")).scalar_one()
    time.sleep(0.001)
    conn.execute(text("UPDATE counter SET v = :v WHERE k = 1"), {"v": value + 1})


def _update_while_reading(conn: Connection) -> None:
    """Write row by row while a select over the rows is still being read."""
    for row in conn.execute(text("SELECT k FROM item ORDER BY k")):
        conn.execute(text("UPDATE item SET n = n + 1 WHERE k = :k"), {"k": row.k})
        time.sleep(0.0003)


WORK = {"increment": _increment, "update_while_reading": _update_while_reading}


def _hammer(url: str, work: str, start: Event, out: multiprocessing.Queue[str]) -> None:
    """One process: ROUNDS transactions of `work` once `start` is set; puts "ready" before,
    each failure's message, then "done"."""
    engine = open_engine(url)
    out.put("ready")
    start.wait(60)
    for _ in range(ROUNDS):
        try:
            run_sync(engine, WORK[work])
        except SQLAlchemyError as exc:
            out.put(str(getattr(exc, "orig", exc)))
    engine.dispose()
    out.put("done")


@pytest.mark.parametrize("work", sorted(WORK))
def test_two_processes_writing_after_reading_lose_nothing_and_never_fail(
    url: str, work: str
) -> None:
    """Two processes, each a loop of transactions that read and then write: every
    transaction commits (no "database is locked" because the other committed meanwhile)
    and none overwrites what the other wrote between its read and its write."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    out: multiprocessing.Queue[str] = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(url, work, start, out)) for _ in range(2)]
    for p in procs:
        p.start()
    assert [out.get(timeout=60) for _ in procs] == ["ready", "ready"]
    start.set()  # both at once
    failures: list[str] = []
    done = 0
    while done < 2:
        message = out.get(timeout=120)
        if message == "done":
            done += 1
        else:
            failures.append(message)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert failures == []
    engine = open_engine(url)
    with engine.connect() as conn:
        if work == "increment":
            assert conn.execute(text("SELECT v FROM counter")).scalar_one() == 2 * ROUNDS
        else:
            counts = conn.execute(text("SELECT n FROM item ORDER BY k")).scalars().all()
            assert counts == [2 * ROUNDS] * 3
    engine.dispose()


def test_a_transaction_holds_the_write_lock_from_its_begin(url: str) -> None:
    """A transaction that has only read so far already holds the write lock (another
    connection cannot begin a write), so nothing can be committed between its reads and
    its writes; a read transaction of a `deferred_engine` holds none."""
    engine = open_engine(url)
    other = _raw(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT v FROM counter")).scalar_one()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        reading = deferred_engine(engine)
        with reading.connect() as conn, conn.begin():
            conn.execute(text("SELECT v FROM counter")).scalar_one()
            other.execute("BEGIN IMMEDIATE")  # free: the reader took no lock
            other.execute("UPDATE counter SET v = 7")
            other.execute("COMMIT")
            # its snapshot began with its first read: it still sees the value from then
            assert conn.execute(text("SELECT v FROM counter")).scalar_one() == 0
        reading.dispose()
    finally:
        other.close()
        engine.dispose()


def _hold_write_lock(url: str, seconds: float, released: list[float]) -> threading.Thread:
    """Another connection takes the write lock now, writes, and commits after `seconds`;
    `released` gets the time just before its COMMIT (no other transaction can have the lock
    before then)."""
    holder = _raw(url)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE counter SET v = v + 100")

    def release() -> None:
        time.sleep(seconds)
        released.append(time.monotonic())
        holder.execute("COMMIT")
        holder.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


class _Pauses:
    """The engine module's `time`, recording each pause between tries of BEGIN IMMEDIATE."""

    def __init__(self) -> None:
        self.taken: list[float] = []
        self.monotonic = time.monotonic

    def sleep(self, seconds: float) -> None:
        self.taken.append(seconds)
        time.sleep(seconds)


def test_a_waiting_transaction_tries_again_in_short_pauses_until_the_lock_is_released(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait for the lock is ours, in pauses of 0.2 to 1 ms, not SQLite's busy handler,
    which sleeps 1, 2, 5, 10, 15, 20, 25 ms between its tries (a lock released after 55 ms
    would be taken at 78 ms, 23 ms late). With the busy handler on for the tries, BEGIN
    IMMEDIATE would block inside SQLite and no pause of ours would be seen."""
    pauses = _Pauses()
    monkeypatch.setattr(engine_module, "time", pauses)
    engine = open_engine(url)
    for _ in range(3):
        pauses.taken.clear()
        released: list[float] = []
        thread = _hold_write_lock(url, 0.055, released)
        with engine.begin() as conn:
            conn.execute(text("UPDATE counter SET v = v + 1"))
            got = time.monotonic()  # holding the lock: the write is done
        thread.join()
        assert got > released[0]  # it did wait for the other's commit
        assert len(pauses.taken) >= 5, pauses.taken  # by its own tries
        assert pauses.taken[0] == 0.0002
        assert max(pauses.taken) <= 0.001
    engine.dispose()
    check = open_engine(url)
    with check.connect() as conn:
        assert conn.execute(text("SELECT v FROM counter")).scalar_one() == 3 * 101
    check.dispose()


async def test_the_store_waits_for_the_lock_writes_and_gives_up_after_the_bound(
    url: str,
) -> None:
    store = Store(open_engine(url))
    try:
        released: list[float] = []
        thread = _hold_write_lock(url, 0.3, released)
        await store.call(_increment)  # waits for the other's commit, then writes
        thread.join()
        assert await store.read(_value) == 101
        holder = _raw(url)
        holder.execute("BEGIN IMMEDIATE")
        began = time.monotonic()
        with pytest.raises(StorageUnavailable, match="database is locked"):
            await store.call(_increment)
        waited = time.monotonic() - began
        # Calls queued behind it on the database thread continue its wait: each fails at
        # once, instead of after 5 s of its own (an SMTP commit behind the workers' steps).
        began = time.monotonic()
        queued = await asyncio.gather(
            *(store.call(_increment) for _ in range(3)), return_exceptions=True
        )
        queued_waited = time.monotonic() - began
        holder.execute("ROLLBACK")
        holder.close()
        assert LOCK_WAIT <= waited < LOCK_WAIT + 1.5
        assert [type(e) for e in queued] == [StorageUnreachable] * 3
        assert queued_waited < 1.0
        await store.call(_increment)  # the lock free again: the same write goes through
        assert await store.read(_value) == 102
    finally:
        await store.close()


def _value(conn: Connection) -> int:
    return int(conn.execute(text("SELECT v FROM counter WHERE k = 1")).scalar_one())


async def test_the_smtp_read_path_does_not_wait_while_another_holds_the_write_lock(
    url: str,
) -> None:
    """`Store.read` (a RCPT lookup) begins DEFERRED: with another connection holding the
    write lock and an uncommitted write, it answers at once with the committed value."""
    store = Store(open_engine(url))
    holder = _raw(url)
    try:
        assert await store.read(_value) == 0
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE counter SET v = 5")
        for _ in range(3):
            began = time.monotonic()
            assert await store.read(_value) == 0
            # not BEGIN IMMEDIATE, which would wait LOCK_WAIT and fail
            assert time.monotonic() - began < LOCK_WAIT / 2
        holder.execute("COMMIT")
        assert await store.read(_value) == 5
    finally:
        holder.close()
        await store.close()


def _mailsms(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "mailsms"), *args, "-c", str(config)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_migrations_and_cli_commands_run_while_another_process_writes(tmp_path: Path) -> None:
    """`mailsms db upgrade` migrates a new database (Alembic in the engine's transaction);
    a command that writes waits for another process's write lock and then commits; a
    command that reads gets through."""
    config = tmp_path / "bridge.toml"
    database = tmp_path / "bridge.db"
    config.write_text(
        f'database_url = "sqlite:///{database}"\n[sandbox]\nenabled = true\n', encoding="utf-8"
    )
    upgraded = _mailsms(config, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    engine: Engine = open_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert revision == head_revision()
    assert f"database at revision {revision}:" in upgraded.stdout
    holder = _raw(f"sqlite:///{database}")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE scratch (x)")
    timer = threading.Timer(3.0, holder.execute, ("COMMIT",))
    timer.start()
    try:
        added = _mailsms(config, "customer", "add", "acme", "--network", "192.0.2.0/24")
        assert added.returncode == 0, added.stderr
    finally:
        timer.join()
        holder.close()
    listed = _mailsms(config, "customer", "list")
    assert listed.returncode == 0 and "acme" in listed.stdout, listed.stderr
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM scratch")).scalar_one() == 0
    engine.dispose()


def test_a_report_reads_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    """`mailsms report orders` only reads: it takes no lock, so it neither waits for the
    running bridge's writes nor holds them back. Here the lock is held longer than a
    writer would wait (`LOCK_WAIT`), and the report still answers, no slower than with
    the lock free by as much as that wait."""
    config = tmp_path / "bridge.toml"
    database = tmp_path / "bridge.db"
    config.write_text(
        f'database_url = "sqlite:///{database}"\n[sandbox]\nenabled = true\n', encoding="utf-8"
    )
    assert _mailsms(config, "db", "upgrade").returncode == 0
    # the same command with the lock free, in this run: what a process start costs here
    started = time.monotonic()
    assert _mailsms(config, "report", "orders").returncode == 0
    unlocked = time.monotonic() - started
    holder = _raw(f"sqlite:///{database}")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE scratch (x)")
    try:
        started = time.monotonic()
        report = _mailsms(config, "report", "orders")
        took = time.monotonic() - started
        # a writer would have waited LOCK_WAIT and failed with "database is locked"
        added = _mailsms(config, "customer", "add", "acme", "--network", "192.0.2.0/24")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert report.returncode == 0, report.stderr
    # had it waited for the lock, it would have taken LOCK_WAIT more than with the lock free
    # (the bound is relative: a whole process start can take seconds on a slow machine)
    assert took < unlocked + LOCK_WAIT, (took, unlocked)
    assert added.returncode != 0 and "locked" in (added.stdout + added.stderr).lower()
