"""The store: runs every database call on its own threads, and group-commits batches.

SQL lives in each domain's modules as plain functions taking a connection
(`fn(conn, *args)`); `Store.call` runs one in a transaction on a database thread and
translates database errors into `StorageUnavailable`, so callers answer 4xx or a
transient SMPP status. SQLite gets one thread (one writer); PostgreSQL several.

`Store.grouped` is the group commit: items queue up while the previous commit of their
batch function runs and are written together in one transaction ("batch whatever is
queued when the last commit ended"); each caller's future resolves only after that
commit returned. Their waits are summed (`waits`): while the database keeps up, a wait
is a commit or two; when it falls behind, the waits grow (the intake's flow control
reads them, `bridge/intake/pacing.py`). The intake's commit
(`bridge.intake.commit.accept`), receipts and inbound SMS all go through it. The batch
functions of one lane (the functions given the same `lane`; with one database thread,
SQLite's one writer whose commits never overlap anyway, all of them) are committed by
one loop: the batches queued at the same moment go into one transaction, one commit
(and one fsync) for all of them; a joint commit that fails is retried function by
function, and then item by item, so one bad item still fails only its own caller (a
fault of the database itself, a lost connection or a lock held elsewhere, fails every
caller of the batch at once: each try again would wait as long again). A
function queued `after_others` runs after the others in such a joint transaction, so
that what it reads includes what they wrote: the dispatcher's claim joins the commit of
the mail whose orders it claims (the intake wakes it as it queues the mail), one
transaction where there were two; the receipts step's round shares the next commit of
the receipts received meanwhile, its `taken` giving it the dispatcher's hold as that
transaction starts (the lanes: `bridge/mt/lanes.py`). The commit loop lets one turn of
the event loop pass before it takes a batch after a wake-up, so that work woken by the
same event is queued by then. With several threads (PostgreSQL) the lanes, and the
functions without one, commit side by side. A thread keeps its connection between its
transactions (`_Kept`). The transactions
committed and the items they wrote are counted (`mailsms_database_commits_total`,
`..._committed_items_total`) when the store is given the bridge's metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError

from bridge.db import engine as db_engine
from bridge.db.deadline import Deadlines
from bridge.errors import StorageUnavailable, StorageUnreachable
from bridge.metrics import Metrics

log = logging.getLogger("bridge.store")

P = ParamSpec("P")
T = TypeVar("T")
Item = TypeVar("Item")
R = TypeVar("R")


# Seconds a database call (PostgreSQL) may go without an answer before its connection is
# cut: the default of the `database_timeout` setting, and the bound of `call_slow`'s.
DEFAULT_TIMEOUT = 60.0
SLOW_TIMEOUT = 3600.0


_UNWATCHED: contextlib.nullcontext[None] = contextlib.nullcontext()


class _NoAnswer(DisconnectionError):
    """A call's connection cut by its deadline: the database did not answer in time."""


class _Group(Generic[Item, R]):
    """Items queued for one batch function `fn(conn, items) -> one result per item`;
    `taken(items)`, if given, runs on the event loop as a batch is taken and returns the
    items `fn` gets (what only the loop knows, as of the transaction's start)."""

    def __init__(
        self,
        fn: Callable[[Connection, list[Item]], Sequence[R]],
        after_others: bool,
        taken: Callable[[list[Item]], list[Item]] | None = None,
        aside: bool = False,
    ) -> None:
        self.fn = fn
        self.after_others = after_others
        self.taken = taken
        self.aside = aside
        self.pending: list[tuple[Item, asyncio.Future[R]]] = []


class _Lane:
    """Groups committed by one loop: every group with one database thread, else those
    given the same lane name (a group without one has a lane of its own)."""

    def __init__(self) -> None:
        self.groups: list[_Group[Any, Any]] = []
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class _Kept(threading.local):
    """A database thread's own connection, kept between its transactions."""

    conn: Connection | None = None
    used = 0.0  # when its last transaction or read ended (time.monotonic)
    generation = 0  # the store's generation when it was taken from the pool


class Store:
    """Async access to the database for the running bridge."""

    def __init__(
        self,
        engine: Engine,
        *,
        threads: int | None = None,
        max_batch: int = 512,
        metrics: Metrics | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.engine = engine
        # PostgreSQL: a call without an answer this long has its connection cut
        # (`bridge.db.deadline`); `call_slow`'s get SLOW_TIMEOUT. None on SQLite.
        self.timeout = timeout
        self._deadlines = Deadlines() if engine.dialect.name != "sqlite" else None
        # the group commits' committed transactions and items (/metrics); none: uncounted
        self._metrics = metrics
        if threads is None:
            threads = 1 if engine.dialect.name == "sqlite" else 4
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="db")
        self._max_batch = max_batch
        # group commits: their callers' waits, from queued to committed, summed, and how many
        self.commit_wait = 0.0
        self.commits = 0
        self._groups: dict[Callable[..., Any], tuple[_Group[Any, Any], _Lane]] = {}
        self._shared_lane = _Lane() if threads == 1 else None  # one writer: commit together
        self._lanes: dict[str, _Lane] = {}  # with several threads: the lanes named by callers
        self._aside: set[asyncio.Task[None]] = set()  # batches committing beside their lane
        # Each database thread keeps its connection between transactions and reads (no pool
        # checkout and return, with its reset, per transaction: ~7 % of the CPU of an SMS on
        # PostgreSQL at a steady load), where the pool has one for every thread. A kept
        # PostgreSQL connection idle for over PING_IDLE is pinged before use, as the pool
        # pings its idle ones; a lost connection anywhere (a failover) makes every thread
        # take a new one: each kept connection carries the store's `_generation` it was
        # taken in.
        self._keep = (threads == 1 and engine.dialect.name == "sqlite") or threads <= _pool_room(
            engine
        )
        self._ping = engine.dialect.name != "sqlite"
        self._kept = _Kept()
        self._generation = 0
        self._all_kept: set[Connection] = set()  # every thread's, closed with the store
        self._kept_lock = threading.Lock()
        self.batches = 0
        # calls run on a database thread, group commits, items they carried
        self.counts = {"calls": 0, "batches": 0, "batched_items": 0}
        self._reader: Connection | None = None
        self._read_engine: Engine | None = None
        # PostgreSQL's reads without a kept connection: the same pool, each statement
        # committed on its own
        self._autocommit = (
            engine
            if engine.dialect.name == "sqlite"
            else engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, *args, **kwargs)` in one transaction on a database thread."""
        return await self._on_thread(self._transaction, fn, args, kwargs, self.timeout)

    async def call_slow(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`call` for a transaction that may take long on a large database (the daily
        purge, the monthly reports): its connection is cut only after `SLOW_TIMEOUT`."""
        return await self._on_thread(
            self._transaction, fn, args, kwargs, max(self.timeout, SLOW_TIMEOUT)
        )

    async def _on_thread(self, target: Callable[..., T], *args: Any) -> T:
        self.counts["calls"] += 1
        loop = asyncio.get_running_loop()
        # The caller's context goes along: log lines on the database thread keep its fields.
        run = contextvars.copy_context().run
        return await loop.run_in_executor(self._executor, run, target, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run the read-only `fn(conn, *args)`: on SQLite right here, else on a database
        thread without a transaction (autocommit).

        For small indexed lookups on the SMTP hot path (a RCPT check). SQLite in WAL
        mode never makes a reader wait for the writer, so the lookup costs tens of
        microseconds on the event loop instead of a turn in the database thread's queue
        behind commits. `fn` must not write.
        """
        if self.engine.dialect.name != "sqlite":
            return await self._on_thread(self._autocommit_read, fn, args)
        try:
            if self._reader is None:
                if self._read_engine is None:  # DEFERRED: a read never waits for the writer
                    self._read_engine = db_engine.deferred_engine(self.engine)
                self._reader = self._read_engine.connect()
                # Never hold the event loop for long: a read that would wait fails fast
                # (StorageUnavailable, so the client gets a 4xx and retries).
                self._reader.exec_driver_sql("PRAGMA busy_timeout = 100")
                self._reader.commit()
            with self._reader.begin():
                return fn(self._reader, *args)
        except (SQLAlchemyError, OSError) as exc:
            self._drop_reader()
            raise _fault(exc) from exc

    def _autocommit_read(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """`fn` with each statement on its own (PostgreSQL's autocommit): no BEGIN and no
        COMMIT, two round trips fewer per lookup. For a read that is what the default
        isolation (READ COMMITTED) gives inside a transaction too: a snapshot per statement.
        On the thread's kept connection, switched to autocommit for the read (the
        driver's own setting; no round trip)."""
        try:
            if not self._keep:
                with self._autocommit.connect() as conn, self._watched(conn, self.timeout, fn):
                    return fn(conn, *args)
            conn = self._connection()
            raw: Any = conn.connection.dbapi_connection
            _set_autocommit(raw, True)
            try:
                # no BEGIN is sent in autocommit, nor a COMMIT
                with self._watched(conn, self.timeout, fn), conn.begin():
                    result = fn(conn, *args)
            finally:
                if not raw.closed:
                    _set_autocommit(raw, False)
            self._kept.used = time.monotonic()
            return result
        except (SQLAlchemyError, OSError) as exc:
            raise self._failed(exc) from exc

    def _connection(self) -> Connection:
        """The calling database thread's kept connection: taken from the pool the first
        time, after a failure or after a lost connection elsewhere; pinged when idle."""
        kept = self._kept
        conn = kept.conn
        if conn is not None:
            if kept.generation != self._generation or conn.invalidated:
                self._drop(lost=True)  # closed, not reset in the pool: it may be dead
                conn = None
            elif self._ping and time.monotonic() - kept.used > db_engine.PING_IDLE:
                try:
                    with self._watched(conn, self.timeout, db_engine.ping):
                        db_engine.ping(conn.connection.dbapi_connection)
                except DisconnectionError:  # dead, silent (a failover, a restart): a new one
                    self._drop(lost=True)
                    conn = None
        if conn is None:
            conn = kept.conn = self.engine.connect()
            kept.generation = self._generation
            with self._kept_lock:
                self._all_kept.add(conn)
        return conn

    def _drop(self, *, lost: bool = False) -> None:
        """The calling thread's kept connection back to the pool, or closed if `lost`
        (the thread's next one is another)."""
        conn, self._kept.conn = self._kept.conn, None
        if conn is not None:
            with self._kept_lock:
                self._all_kept.discard(conn)
            with contextlib.suppress(SQLAlchemyError):
                if lost and not conn.invalidated:
                    conn.invalidate()
                conn.close()

    def _failed(self, exc: SQLAlchemyError | OSError) -> StorageUnavailable:
        """A transaction or read failed: its thread's kept connection is dropped, and after
        a lost connection every thread's (the others were likely cut off with it)."""
        lost = isinstance(exc, DisconnectionError) or bool(
            getattr(exc, "connection_invalidated", False)
        )
        if self._keep:
            self._drop(lost=lost)
        if lost:
            self._generation += 1
        return _fault(exc)

    def _drop_reader(self) -> None:
        if self._reader is not None:
            reader, self._reader = self._reader, None
            with contextlib.suppress(SQLAlchemyError):
                reader.close()

    def _transaction(
        self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], within: float
    ) -> T:
        try:
            if not self._keep:
                with (  # the commit inside the watch
                    self.engine.connect() as conn,
                    self._watched(conn, within, fn),
                    conn.begin(),
                ):
                    return fn(conn, *args, **kwargs)
            conn = self._connection()
            with self._watched(conn, within, fn), conn.begin():
                result = fn(conn, *args, **kwargs)
            self._kept.used = time.monotonic()
            return result
        except (SQLAlchemyError, OSError) as exc:  # OSError: e.g. the directory vanished
            raise self._failed(exc) from exc  # the next transaction starts on a new connection

    def _watched(
        self, conn: Connection, within: float, fn: Callable[..., Any]
    ) -> contextlib.AbstractContextManager[None]:
        """PostgreSQL: `conn` cut if the block has not ended `within` seconds from now
        (`bridge.db.deadline`); what the block raises then is a `_NoAnswer`. SQLite:
        nothing."""
        if self._deadlines is None:
            return _UNWATCHED
        return self._watching(self._deadlines, conn, within, fn)

    @contextlib.contextmanager
    def _watching(
        self, deadlines: Deadlines, conn: Connection, within: float, fn: Callable[..., Any]
    ) -> Iterator[None]:
        raw: Any = conn.connection.dbapi_connection
        what = getattr(fn, "__qualname__", "a call")
        with deadlines.watch(raw.fileno(), within, what) as call:
            try:
                yield
            except (SQLAlchemyError, OSError) as exc:
                if call.cut:
                    raise _NoAnswer(
                        f"the database did not answer within {within:g} s ({what}); "
                        "its connection was cut"
                    ) from exc
                raise

    async def grouped(
        self,
        fn: Callable[[Connection, list[Item]], Sequence[R]],
        item: Item,
        *,
        lane: str = "",
        after_others: bool = False,
        taken: Callable[[list[Item]], list[Item]] | None = None,
        aside: bool = False,
    ) -> R:
        """Group commit: run `fn(conn, items)` for `item` together with whatever else is
        queued for `fn` (and for the other batch functions of its lane) when the previous
        commit of the lane ended; returns `item`'s result once that transaction has
        committed. A failed batch is retried item by item, so one bad item fails only its
        own caller (unless the database failed it: `StorageUnreachable` for every item,
        at once). Fixed by a function's first call: `lane`, the name of the lane it
        shares with the functions given the same name (with one database thread every
        function shares one; with several, a function without a name has a lane of its
        own, and the lanes commit side by side); `after_others`, in a transaction shared
        with other functions `fn` runs after them; `taken(items)`, run on the event loop
        as the batch is taken, gives the items `fn` gets instead (e.g. loop state as of
        the transaction's start rather than of the call); `aside`, with several threads
        a batch of `fn` taken with nothing else of its lane commits beside the lane, not
        holding it (the dispatcher's claim: a message queued meanwhile is not kept
        waiting behind a claim that waits, e.g. for a lock held elsewhere)."""
        found = self._groups.get(fn)
        if found is None:
            found = self._groups[fn] = self._new_group(fn, lane, after_others, taken, aside)
        group, commits = found
        if commits.task is None or commits.task.done():
            # An empty context: a batch holds many callers' items, so its log lines carry no
            # one caller's fields (the first caller's would be wrong for the rest).
            commits.task = asyncio.create_task(
                self._commit_loop(commits), name="group-commit", context=contextvars.Context()
            )
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        group.pending.append((item, future))
        commits.wakeup.set()
        queued = time.monotonic()
        try:
            return await future
        finally:
            self.commit_wait += time.monotonic() - queued
            self.commits += 1

    def _new_group(
        self,
        fn: Callable[[Connection, list[Item]], Sequence[R]],
        lane: str,
        after_others: bool,
        taken: Callable[[list[Item]], list[Item]] | None,
        aside: bool,
    ) -> tuple[_Group[Item, R], _Lane]:
        """A group for `fn`, in the lane it commits in."""
        if self._shared_lane is not None:
            commits = self._shared_lane
        elif lane:
            commits = self._lanes.setdefault(lane, _Lane())
        else:
            commits = _Lane()
        group: _Group[Item, R] = _Group(fn, after_others, taken, aside)
        # the functions that read what the others write come last, in order of arrival
        at = len(commits.groups) if after_others else _first_after(commits.groups)
        commits.groups.insert(at, group)
        return group, commits

    def waits(self) -> tuple[float, int]:
        """The group commits' callers so far: their waits from queued to committed (the
        database's queue, its lock, the disk), summed in seconds, and how many they were."""
        return self.commit_wait, self.commits

    async def _commit_loop(self, lane: _Lane) -> None:
        while True:
            await lane.wakeup.wait()
            # One turn of the loop: work woken together with this wake-up (the dispatcher's
            # claim, by the mail whose orders it claims) is queued by then, and joins.
            await asyncio.sleep(0)
            lane.wakeup.clear()
            while True:
                taken = [(g, self._take(g)) for g in lane.groups if g.pending]
                batches = [(g, b) for g, b in taken if b]  # a failed `taken` leaves none
                if not batches:
                    if taken:
                        continue  # what is still pending (beyond a batch) goes next
                    break
                if self._shared_lane is None and all(g.aside for g, _ in batches):
                    for group, batch in batches:  # nothing to join: beside the lane
                        task = asyncio.create_task(self._commit_batch(group.fn, batch))
                        self._aside.add(task)
                        task.add_done_callback(self._aside.discard)
                    continue
                if len(batches) == 1:
                    await self._commit_batch(batches[0][0].fn, batches[0][1])
                else:
                    await self._commit_together(batches)

    def _take(self, group: _Group[Item, R]) -> list[tuple[Item, asyncio.Future[R]]]:
        batch = group.pending[: self._max_batch]
        del group.pending[: self._max_batch]
        if group.taken is None:
            return batch
        try:
            items = group.taken([item for item, _ in batch])
            return [(new, future) for new, (_, future) in zip(items, batch, strict=True)]
        except Exception as exc:  # a bug: its callers learn it, the commit loop goes on
            for _, future in batch:
                _settle(future, exc)
            return []

    async def _commit_together(
        self, batches: list[tuple[_Group[Any, Any], list[tuple[Any, asyncio.Future[Any]]]]]
    ) -> None:
        """The batches of several functions in one transaction; if it fails, each on its own
        (if the database failed it, every caller learns it at once)."""
        self.batches += 1
        self.counts["batches"] += 1
        self.counts["batched_items"] += sum(len(b) for _, b in batches)
        work = [(g.fn, [item for item, _ in b]) for g, b in batches]
        try:
            results = await self.call(_run_batches, work)
        except StorageUnreachable as exc:  # the database's fault, no item's: tell them all
            for _, batch in batches:
                for _, future in batch:
                    _settle(future, exc)
            return
        except Exception as exc:  # a write refused, a bug: each function again on its own
            log.info("joint group commit failed (%s); committing each kind on its own", exc)
            for group, batch in batches:
                await self._commit_batch(group.fn, batch)
            return
        self._committed(sum(len(b) for _, b in batches))
        for (_, batch), result in zip(batches, results, strict=True):
            for (_, future), value in zip(batch, result, strict=True):
                _settle(future, value)

    async def _commit_batch(
        self,
        fn: Callable[[Connection, list[Item]], Sequence[R]],
        batch: list[tuple[Item, asyncio.Future[R]]],
    ) -> None:
        self.batches += 1
        self.counts["batches"] += 1
        self.counts["batched_items"] += len(batch)
        try:
            results = await self.call(fn, [item for item, _ in batch])
        except Exception as exc:  # storage faults, and bugs: neither may leave a caller waiting
            if len(batch) == 1 or isinstance(exc, StorageUnreachable):
                # A lost connection or a lock held elsewhere fails every item alike: each
                # item again would only wait as long again (a lock wait each), not help.
                for _, future in batch:
                    _settle(future, exc)
                return
            # One bad item must not fail the others: commit them one by one.
            log.warning(
                "group commit of %d items failed (%s); retrying one by one", len(batch), exc
            )
            for item, future in batch:
                try:
                    single = await self.call(fn, [item])
                except Exception as error:
                    _settle(future, error)
                else:
                    self._committed(1)
                    _settle(future, single[0])
            return
        self._committed(len(batch))
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)

    def _committed(self, items: int) -> None:
        if self._metrics is not None:
            self._metrics.database_commits.inc()
            self._metrics.database_committed_items.inc(items)

    async def close(self) -> None:
        lanes = {id(lane): lane for _, lane in self._groups.values()}
        tasks = [lane.task for lane in lanes.values() if lane.task is not None]
        for task in [*tasks, *self._aside]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for group, _ in self._groups.values():
            for _, future in group.pending:
                _settle(future, StorageUnavailable("store closed"))
            group.pending.clear()
        self._executor.shutdown(wait=True)
        if self._deadlines is not None:
            self._deadlines.close()
        with self._kept_lock:
            kept, self._all_kept = self._all_kept, set()
        for conn in kept:
            with contextlib.suppress(SQLAlchemyError):
                conn.close()
        self._drop_reader()
        if self._read_engine is not None:
            self._read_engine.dispose()
        self.engine.dispose()


def _first_after(groups: list[_Group[Any, Any]]) -> int:
    """Where a group that need not come last goes: before the first one that must."""
    return next((i for i, g in enumerate(groups) if g.after_others), len(groups))


def _run_batches(
    conn: Connection, work: list[tuple[Callable[[Connection, list[Any]], Sequence[Any]], list[Any]]]
) -> list[Sequence[Any]]:
    """Each batch function on its items, in one transaction (the caller's)."""
    return [fn(conn, items) for fn, items in work]


def _settle(future: asyncio.Future[R], outcome: R | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _pool_room(engine: Engine) -> int:
    """The connections `engine`'s pool keeps (0 for a pool that keeps none)."""
    size = getattr(engine.pool, "size", None)
    return int(size()) if callable(size) else 0


def _set_autocommit(dbapi_connection: Any, on: bool) -> None:
    """Switch the driver connection's autocommit; one it cannot switch is lost."""
    try:
        dbapi_connection.autocommit = on
    except Exception as exc:  # whatever the driver raises: the connection is unusable
        raise DisconnectionError(f"the connection cannot switch autocommit: {exc}") from exc


def _fault(exc: SQLAlchemyError | OSError) -> StorageUnavailable:
    """What a database call's failure is for its caller: StorageUnreachable for a lost or
    refused connection (worth the same write again), else StorageUnavailable (the write
    itself failed: a constraint, a bug, a vanished directory)."""
    if isinstance(exc, OSError):
        return StorageUnavailable(str(exc))
    unreachable = isinstance(exc, OperationalError | InterfaceError | DisconnectionError) or bool(
        getattr(exc, "connection_invalidated", False)
    )
    return (StorageUnreachable if unreachable else StorageUnavailable)(_describe(exc))


def _describe(exc: SQLAlchemyError) -> str:
    if isinstance(exc, _NoAnswer):
        return str(exc)
    orig = getattr(exc, "orig", None)
    return f"{type(orig or exc).__name__}: {orig or exc}".splitlines()[0][:300]


def run_sync(engine: Engine, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn(conn, *args, **kwargs)` in one transaction, synchronously (CLI commands)."""
    with engine.begin() as conn:
        return fn(conn, *args, **kwargs)


__all__ = ["Connection", "Store", "run_sync"]
