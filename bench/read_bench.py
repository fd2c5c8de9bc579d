"""What the intake's read for every recipient costs: the stop-list check at RCPT
(`Store.read(is_stopped, …)`), on SQLite and on a throwaway PostgreSQL (skipped where
PostgreSQL is not installed); the process's CPU µs per read and reads/s, one read at a
time as a session's RCPTs come.

On SQLite the read runs on the event loop (WAL: a reader never waits for the writer); on
PostgreSQL on a database thread, autocommit, a pooled connection each. With `--baseline
DIR` the same runs with that checkout's bridge (e.g. `git archive <commit> bridge
templates dirsync | tar -x -C DIR`), the two alternating, each in a process of its own
pinned to CPU 1 where there are two.

    .venv/bin/python bench/read_bench.py [--reads 3000] [--reps 3] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


async def _measure(url: str, reads: int) -> dict[str, float]:
    from bridge.db.engine import open_engine, upgrade
    from bridge.db.store import Store
    from bridge.inbound.actions_store import is_stopped

    engine = open_engine(url)
    upgrade(engine)
    store = Store(engine)
    try:
        for n in range(300):  # warm: the pool, prepared statements, caches
            await store.read(is_stopped, 1, f"+4917099{n:05d}", ("Shop",))
        cpu, wall = time.process_time(), time.perf_counter()
        for n in range(reads):
            await store.read(is_stopped, 1, f"+4917012{n:05d}", ("Shop",))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await store.close()
        engine.dispose()
    return {"cpu_us": cpu / reads * 1e6, "per_s": reads / wall}


def _child(code: str, url: str, reads: int) -> dict[str, float]:
    """One measurement in a process of its own, with `code`'s bridge (this checkout's
    when empty)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (code, str(ROOT)) if p)}
    cmd = [sys.executable, __file__, "--child", url, "--reads", str(reads)]
    if (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", "1", *cmd]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--baseline", default="", help="a checkout's directory to compare")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.child:
        print(json.dumps(asyncio.run(_measure(a.child, a.reads))))
        return
    sys.path.insert(0, str(HERE))
    from e2e import postgres  # a throwaway PostgreSQL pinned to the other CPU, or None

    codes = [("this", "")] + ([("baseline", a.baseline)] if a.baseline else [])
    with tempfile.TemporaryDirectory(prefix="mailsms-read-") as tmp, postgres() as pg:
        databases = [("sqlite", f"sqlite:///{tmp}/{{}}.db")]
        databases += [("postgresql", pg)] if pg else []
        for db, url in databases:
            runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in codes}
            for rep in range(a.reps):
                for name, code in codes:
                    one = url.format(f"{name}{rep}") if db == "sqlite" else url
                    runs[name].append(_child(code, one, a.reads))
            for name, _ in codes:
                cpu = statistics.median(r["cpu_us"] for r in runs[name])
                rate = statistics.median(r["per_s"] for r in runs[name])
                print(
                    f"{db:<10} {name:<8} stop-list read: {cpu:6,.0f} µs CPU per read, "
                    f"{rate:7,.0f} reads/s (medians of {a.reps})",
                    flush=True,
                )


if __name__ == "__main__":
    main()
