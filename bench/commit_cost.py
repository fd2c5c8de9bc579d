"""What one commit costs the bridge on SQLite, layer by layer: the process's CPU per
committed transaction of one small INSERT (`synchronous=FULL`, WAL, as the bridge runs):

1. `sqlite3` alone: BEGIN IMMEDIATE, INSERT, COMMIT (the floor: SQLite and the fsync);
2. the store's transaction on the calling thread (SQLAlchemy's connection, the dialect's
   BEGIN IMMEDIATE with its lock handling, a text statement);
3. the same through the database thread (`Store.call`: the hand-off to the thread and
   back to the event loop);
4. `Store.grouped`, one item at a time (each item its own commit, as at a light load);
5. `Store.grouped` with `--batch` items queued together (one commit for all; per item).

Runs on CPU 1 where there are two. A stage's work per mail at a steady load is what this
adds to each commit the stage causes (bench/README.md, "Commits at a steady load").

    .venv/bin/python bench/commit_cost.py [--n 3000] [--batch 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sqlite3
import tempfile
from pathlib import Path

from sqlalchemy import Connection, text

from bridge.db.engine import open_engine
from bridge.db.store import Store

_INSERT = text("INSERT INTO t (k) VALUES (:k)")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _write(conn: Connection, items: list[int]) -> list[int]:
    for i in items:
        conn.execute(_INSERT, {"k": i})
    return items


def raw_sqlite(path: Path, n: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (k INTEGER)")
    started = _cpu()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (k) VALUES (?)", (i,))
        conn.execute("COMMIT")
    spent = _cpu() - started
    conn.close()
    return spent / n


async def store_layers(path: Path, n: int, batch: int) -> dict[str, float]:
    engine = open_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (k INTEGER)"))
    store = Store(engine, threads=1)
    figures: dict[str, float] = {}
    try:
        await store.grouped(_write, 0)  # the thread, the connection and the loop task exist
        started = _cpu()
        for i in range(n):
            store._transaction(_write, ([i],), {}, store.timeout)  # the layer below `call`
        figures["store transaction, this thread"] = (_cpu() - started) / n
        started = _cpu()
        for i in range(n):
            await store.call(_write, [i])
        figures["Store.call (database thread)"] = (_cpu() - started) / n
        started = _cpu()
        for i in range(n):
            await store.grouped(_write, i)
        figures["Store.grouped, one item per commit"] = (_cpu() - started) / n
        started = _cpu()
        rounds = max(1, n // batch)
        for r in range(rounds):
            await asyncio.gather(*(store.grouped(_write, r * batch + i) for i in range(batch)))
        figures[f"Store.grouped, {batch} items per commit (per item)"] = (_cpu() - started) / (
            rounds * batch
        )
    finally:
        await store.close()
    return figures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=3000, help="commits per layer (default 3000)")
    p.add_argument("--batch", type=int, default=10, help="items per commit in the last layer")
    a = p.parse_args()
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="commit-cost-") as tmp:
        rows = {"sqlite3 alone (BEGIN IMMEDIATE, INSERT, COMMIT)": raw_sqlite(Path(tmp) / "a", a.n)}
        rows.update(asyncio.run(store_layers(Path(tmp) / "b.db", a.n, max(1, a.batch))))
    for name, seconds in rows.items():
        print(f"{name:58s} {seconds * 1e6:7.0f} µs CPU per commit or item")


if __name__ == "__main__":
    main()
