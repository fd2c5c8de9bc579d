"""The store: runs every database call on its own threads, and group-commits accepted mail.

All SQL lives in the `bridge/store/` modules as plain functions taking a connection
(`fn(conn, *args)`); `Store.call` runs one in a transaction on a database thread and
translates database errors into `StorageUnavailable`, so callers answer 4xx or a
transient SMPP status. SQLite gets one thread (one writer); PostgreSQL several.

`Store.accept` is the intake's commit: mails queue up while the previous commit runs
and are written together in one transaction ("batch whatever is queued when the last
commit ended"); each caller's future resolves only after that commit returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from bridge.errors import StorageUnavailable
from bridge.store import intake as intake_sql

log = logging.getLogger("bridge.store")

P = ParamSpec("P")
T = TypeVar("T")


class Store:
    """Async access to the database for the running bridge."""

    def __init__(self, engine: Engine, *, threads: int | None = None, max_batch: int = 512) -> None:
        self.engine = engine
        if threads is None:
            threads = 1 if engine.dialect.name == "sqlite" else 4
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="db")
        self._max_batch = max_batch
        self._pending: list[tuple[intake_sql.NewMail, asyncio.Future[str]]] = []
        self._wakeup = asyncio.Event()
        self._committer: asyncio.Task[None] | None = None
        self.batches = 0

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, *args, **kwargs)` in one transaction on a database thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, fn, args, kwargs)

    def _transaction(
        self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> T:
        try:
            with self.engine.begin() as conn:
                return fn(conn, *args, **kwargs)
        except SQLAlchemyError as exc:
            raise StorageUnavailable(_describe(exc)) from exc
        except OSError as exc:  # e.g. the database directory vanished
            raise StorageUnavailable(str(exc)) from exc

    async def accept(self, mail: intake_sql.NewMail) -> str:
        """Commit a mail and its orders; returns, once they are durable, the mail's id.

        For the same mail delivered twice within its dedupe window nothing new is
        written, and the id returned is the earlier copy's.
        """
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_loop(), name="group-commit")
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending.append((mail, future))
        self._wakeup.set()
        return await future

    async def _commit_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._commit_batch(batch)

    async def _commit_batch(
        self, batch: list[tuple[intake_sql.NewMail, asyncio.Future[str]]]
    ) -> None:
        self.batches += 1
        try:
            duplicates = await self.call(intake_sql.insert_mails, [mail for mail, _ in batch])
        except StorageUnavailable as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            # One bad mail must not fail the others: commit them one by one.
            log.warning(
                "group commit of %d mails failed (%s); retrying one by one", len(batch), exc
            )
            for mail, future in batch:
                try:
                    single = await self.call(intake_sql.insert_mails, [mail])
                except StorageUnavailable as error:
                    _settle(future, error)
                else:
                    _settle(future, single.get(mail.id, mail.id))
            return
        for mail, future in batch:
            _settle(future, duplicates.get(mail.id, mail.id))

    async def close(self) -> None:
        if self._committer is not None:
            self._committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._committer
        for _, future in self._pending:
            _settle(future, StorageUnavailable("store closed"))
        self._pending.clear()
        self._executor.shutdown(wait=True)
        self.engine.dispose()


def _settle(future: asyncio.Future[str], outcome: str | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _describe(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return f"{type(orig or exc).__name__}: {orig or exc}".splitlines()[0][:300]


def run_sync(engine: Engine, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn(conn, *args, **kwargs)` in one transaction, synchronously (CLI commands)."""
    with engine.begin() as conn:
        return fn(conn, *args, **kwargs)


__all__ = ["Connection", "Store", "run_sync"]
