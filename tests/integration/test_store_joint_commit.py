"""The group commit across batch functions: with one database thread (SQLite's one writer)
the batches of different functions queued together share one transaction and one commit;
a failure in one of them costs the others nothing and writes nothing twice. With several
threads (PostgreSQL's default) the functions that share a lane do so too, and the others,
and the lanes, keep their own transactions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import cast

import pytest
from sqlalchemy import Connection, Engine, event, text

from bridge.db import engine as engine_module
from bridge.db.engine import open_engine
from bridge.db.store import Store
from bridge.errors import StorageUnreachable
from bridge.metrics import Metrics
from tests.conftest import fresh_postgres

Batch = Callable[[Connection, list[int]], list[int]]


def _keep(table: str, fail_on: int | None = None) -> Batch:
    """A batch function writing each item into `table` (raising for `fail_on`)."""

    def write(conn: Connection, items: list[int]) -> list[int]:
        for i in items:
            conn.execute(text(f"INSERT INTO {table} (k) VALUES (:k)"), {"k": i})
            if i == fail_on:
                raise ValueError(f"item {i} is refused")
        return [i * 10 for i in items]

    write.__name__ = f"write_{table}"
    return write


@pytest.fixture
def tables(engine: Engine) -> Iterator[Engine]:
    with engine.begin() as conn:
        for name in ("joint_a", "joint_b"):
            conn.execute(text(f"CREATE TABLE {name} (k INTEGER NOT NULL)"))
    yield engine


def _rows(engine: Engine, table: str) -> list[int]:
    with engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(text(f"SELECT k FROM {table}")))


async def _together(store: Store, calls: list[tuple[Batch, int]]) -> list[object]:
    return await asyncio.wait_for(
        asyncio.gather(*(store.grouped(fn, i) for fn, i in calls), return_exceptions=True),
        timeout=10,
    )


async def test_with_one_database_thread_two_functions_share_one_commit(
    tables: Engine, database_url: str
) -> None:
    store = Store(open_engine(database_url), threads=1)
    commits: list[int] = []
    event.listen(store.engine, "commit", lambda conn: commits.append(1))
    a, b = _keep("joint_a"), _keep("joint_b")
    try:
        results = await _together(store, [(a, 1), (b, 2), (a, 3), (b, 4)])
    finally:
        await store.close()
    assert results == [10, 20, 30, 40]
    assert _rows(tables, "joint_a") == [1, 3] and _rows(tables, "joint_b") == [2, 4]
    assert len(commits) == 1  # one transaction for both functions' batches


async def test_a_failing_item_fails_only_its_caller_and_nothing_is_written_twice(
    tables: Engine, database_url: str
) -> None:
    """The joint transaction is rolled back (joint_a's rows too), each function is
    committed on its own, the failing one item by item: every good item once."""
    store = Store(open_engine(database_url), threads=1)
    a, b = _keep("joint_a"), _keep("joint_b", fail_on=13)
    try:
        results = await _together(store, [(a, 1), (b, 13), (a, 3), (b, 4)])
        after = await _together(store, [(a, 5), (b, 6)])  # the loop goes on
    finally:
        await store.close()
    assert results[0] == 10 and results[2] == 30 and results[3] == 40
    assert isinstance(results[1], ValueError)
    assert after == [50, 60]
    assert _rows(tables, "joint_a") == [1, 3, 5]
    assert _rows(tables, "joint_b") == [4, 6]


async def test_with_several_database_threads_each_function_commits_on_its_own(
    tables: Engine, database_url: str
) -> None:
    store = Store(open_engine(database_url), threads=2)
    commits: list[int] = []
    event.listen(store.engine, "commit", lambda conn: commits.append(1))
    a, b = _keep("joint_a"), _keep("joint_b")
    try:
        results = await _together(store, [(a, 1), (b, 2)])
    finally:
        await store.close()
    assert results == [10, 20]
    assert len(commits) == 2


async def test_with_several_database_threads_the_functions_of_a_lane_share_one_commit(
    tables: Engine, database_url: str
) -> None:
    """Two functions of one lane, and one of them after the others, commit together; a
    function of another lane commits on its own."""
    store = Store(open_engine(database_url), threads=3)
    commits: list[int] = []
    event.listen(store.engine, "commit", lambda conn: commits.append(1))
    writer, reader = _keep("joint_a"), _count("joint_b", seen="joint_a")
    elsewhere = _keep("joint_c")
    with tables.begin() as conn:
        conn.execute(text("CREATE TABLE joint_c (k INTEGER NOT NULL)"))
    try:
        results = await asyncio.wait_for(
            asyncio.gather(
                store.grouped(reader, 1, lane="one", after_others=True),
                store.grouped(writer, 2, lane="one"),
                store.grouped(elsewhere, 3, lane="other"),
            ),
            timeout=10,
        )
    finally:
        await store.close()
    assert cast("list[int]", results) == [1, 20, 30]  # the reader saw the writer's row
    assert len(commits) == 2  # lane "one" in one transaction, lane "other" in another
    assert _rows(tables, "joint_b") == [1] and _rows(tables, "joint_c") == [3]


def _count(table: str, seen: str) -> Batch:
    """A batch function writing each item into `table` with the rows `seen` holds then."""

    def write(conn: Connection, items: list[int]) -> list[int]:
        n = conn.execute(text(f"SELECT count(*) FROM {seen}")).scalar_one()
        for i in items:
            conn.execute(text(f"INSERT INTO {table} (k) VALUES (:k)"), {"k": i})
        return [n for _ in items]

    write.__name__ = f"count_{seen}"
    return write


async def test_a_function_queued_after_others_sees_their_rows_whichever_came_first(
    tables: Engine, database_url: str
) -> None:
    """The reader is queued first (and its group made first), the writer after it; in
    their joint transaction the reader still runs last and counts the writer's row."""
    store = Store(open_engine(database_url), threads=1)
    commits: list[int] = []
    event.listen(store.engine, "commit", lambda conn: commits.append(1))
    reader, writer = _count("joint_b", seen="joint_a"), _keep("joint_a")
    try:
        results = await asyncio.wait_for(
            asyncio.gather(store.grouped(reader, 1, after_others=True), store.grouped(writer, 2)),
            timeout=10,
        )
    finally:
        await store.close()
    assert cast("list[int]", results) == [1, 20]  # the reader saw the writer's row
    assert len(commits) == 1


async def test_work_woken_in_the_same_turn_joins_the_commit(
    tables: Engine, database_url: str
) -> None:
    """A producer wakes a consumer and queues its row (as the intake wakes the dispatcher);
    the consumer, with one more await before it queues its claim, still joins the
    commit: the commit loop, idle until then, lets a turn of the loop pass first."""
    store = Store(open_engine(database_url), threads=1)
    commits: list[int] = []
    event.listen(store.engine, "commit", lambda conn: commits.append(1))
    reader, writer = _count("joint_b", seen="joint_a"), _keep("joint_a")
    woken = asyncio.Event()

    async def consumer() -> int:
        await woken.wait()
        await asyncio.sleep(0)  # e.g. its worker's own bookkeeping
        return await store.grouped(reader, 7, after_others=True)

    async def producer() -> int:
        woken.set()
        return await store.grouped(writer, 3)

    try:
        assert await store.grouped(writer, 1) == 10  # the commit loop runs, and is idle now
        commits.clear()
        claim = asyncio.create_task(consumer())
        await asyncio.sleep(0)  # the consumer waits for its wake-up
        row = await asyncio.wait_for(producer(), timeout=10)
        seen = await asyncio.wait_for(claim, timeout=10)
    finally:
        await store.close()
    assert (row, seen) == (30, 2)
    assert len(commits) == 1


async def test_taken_gives_the_items_as_of_the_transactions_start(
    tables: Engine, database_url: str
) -> None:
    """`taken` runs on the loop as the batch is taken: state changed between the call and
    the commit's start reaches the function (the receipts round's hold); one that raises
    fails only its own callers, and the commit loop goes on."""
    store = Store(open_engine(database_url), threads=1)
    state = {"now": "at the call"}
    seen: list[str] = []

    def batch(conn: Connection, items: list[str]) -> list[str]:
        seen.extend(items)
        return [item.upper() for item in items]

    def taken(items: list[str]) -> list[str]:
        if state["now"] == "broken":
            raise RuntimeError("taken failed")
        return [state["now"] for _ in items]

    def slow(conn: Connection, items: list[int]) -> list[int]:
        import time

        time.sleep(0.1)  # the lane busy: the next batch is taken after this commit
        return items

    try:
        busy = asyncio.create_task(store.grouped(slow, 1))
        await asyncio.sleep(0.02)  # its commit is running
        queued = asyncio.create_task(store.grouped(batch, "x", taken=taken))
        await asyncio.sleep(0)
        state["now"] = "as the commit starts"
        assert await asyncio.wait_for(queued, timeout=10) == "AS THE COMMIT STARTS"
        await busy
        state["now"] = "broken"
        with pytest.raises(RuntimeError, match="taken failed"):
            await asyncio.wait_for(store.grouped(batch, "y"), timeout=10)
        state["now"] = "fixed"
        assert await asyncio.wait_for(store.grouped(batch, "z"), timeout=10) == "FIXED"
    finally:
        await store.close()
    assert seen == ["as the commit starts", "fixed"]


def _committed(metrics: Metrics) -> tuple[float | None, float | None]:
    r = metrics.registry
    return (
        r.get_sample_value("mailsms_database_commits_total"),
        r.get_sample_value("mailsms_database_committed_items_total"),
    )


async def test_committed_transactions_and_their_items_are_counted(
    tables: Engine, database_url: str
) -> None:
    """/metrics' mailsms_database_commits_total and _committed_items_total: the
    transactions that committed and the items they wrote (items / commits: the batch
    size). A joint transaction rolled back counts nothing; what is committed after it,
    function by function and item by item, counts once."""
    metrics = Metrics.unregistered()
    store = Store(open_engine(database_url), threads=1, metrics=metrics)
    a, b = _keep("joint_a"), _keep("joint_b", fail_on=13)
    try:
        await _together(store, [(a, 1), (a, 2), (a, 3)])
        assert _committed(metrics) == (1, 3)
        results = await _together(store, [(a, 5), (b, 13), (a, 6), (b, 4)])
    finally:
        await store.close()
    assert isinstance(results[1], ValueError)
    # a's batch (2 items) in one commit; b's item by item: 13 fails, 4 commits
    assert _committed(metrics) == (1 + 2, 3 + 3)


@pytest.mark.postgres
@pytest.mark.parametrize("threads", [1, 3])
async def test_a_lock_held_elsewhere_fails_the_whole_batch_after_one_wait(
    postgres_server: str, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that fails for the database's sake (a lock held elsewhere, a lost
    connection: StorageUnreachable) fails every caller in it at once. Trying each function
    and each item again, as for an item the database refused, would wait for the lock as
    long again each time: ~15 s for a message and the claim joining its commit, longer
    than an SMPP client waits for its answer."""
    monkeypatch.setattr(engine_module, "LOCK_WAIT", 0.2)  # each session's lock_timeout
    tables = open_engine(fresh_postgres(postgres_server))
    with tables.begin() as conn:
        for name in ("joint_a", "joint_b"):
            conn.execute(text(f"CREATE TABLE {name} (k INTEGER NOT NULL)"))
    store = Store(open_engine(tables.url.render_as_string(hide_password=False)), threads=threads)
    begun: list[int] = []
    event.listen(store.engine, "begin", lambda conn: begun.append(1))
    a, b = _keep("joint_a"), _count("joint_b", seen="joint_a")
    try:
        with tables.connect() as holder:
            holder.execute(text("LOCK TABLE joint_a IN ACCESS EXCLUSIVE MODE"))
            results = await asyncio.wait_for(
                asyncio.gather(
                    store.grouped(a, 1, lane="one"),
                    store.grouped(a, 2, lane="one"),
                    store.grouped(a, 3, lane="one"),
                    store.grouped(b, 4, lane="one", after_others=True),
                    return_exceptions=True,
                ),
                timeout=30,
            )
            holder.rollback()
        assert all(isinstance(r, StorageUnreachable) for r in results), results
        assert len(begun) == 1  # one transaction, one lock wait: no retries
        assert await store.grouped(a, 5, lane="one") == 50  # the lock gone: written
    finally:
        await store.close()
    assert _rows(tables, "joint_a") == [5] and _rows(tables, "joint_b") == []
    tables.dispose()


@pytest.mark.postgres
async def test_a_batch_aside_with_nothing_to_join_does_not_hold_its_lane(
    postgres_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With several threads, a batch of an `aside` function (the dispatcher's claim) taken
    alone commits beside its lane: a write queued in the lane meanwhile is not kept
    behind it while it waits (here for a lock held elsewhere); queued together, it
    joins that write's transaction."""
    monkeypatch.setattr(engine_module, "LOCK_WAIT", 2.0)  # each session's lock_timeout
    tables = open_engine(fresh_postgres(postgres_server))
    with tables.begin() as conn:
        for name in ("joint_a", "joint_b", "joint_c"):
            conn.execute(text(f"CREATE TABLE {name} (k INTEGER NOT NULL)"))
    store = Store(open_engine(tables.url.render_as_string(hide_password=False)), threads=3)
    claim, write = _count("joint_b", seen="joint_c"), _keep("joint_a")
    try:
        with tables.connect() as holder:
            holder.execute(text("LOCK TABLE joint_c IN ACCESS EXCLUSIVE MODE"))
            waiting = asyncio.ensure_future(
                store.grouped(claim, 1, lane="one", after_others=True, aside=True)
            )
            await asyncio.sleep(0.3)  # taken alone, and waiting for the lock
            assert await asyncio.wait_for(store.grouped(write, 2, lane="one"), 1.5) == 20
            assert not waiting.done()  # still waiting for the lock: the write did not
            with pytest.raises(StorageUnreachable):
                await waiting
            holder.rollback()
        commits: list[int] = []
        event.listen(store.engine, "commit", lambda conn: commits.append(1))
        sees_writes = _count("joint_b", seen="joint_a")
        together = await asyncio.wait_for(
            asyncio.gather(
                store.grouped(sees_writes, 3, lane="one", after_others=True, aside=True),
                store.grouped(write, 4, lane="one"),
            ),
            timeout=10,
        )
        assert cast("list[int]", together) == [2, 40]  # rows 2 and 4: it ran after the write
        assert len(commits) == 1  # in the write's transaction
    finally:
        await store.close()
    tables.dispose()
