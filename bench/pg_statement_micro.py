"""What one statement costs inside a transaction on PostgreSQL, for the client and for the
server: psycopg alone against a throwaway server (its safe defaults), one connection.

Each case is one transaction, `BEGIN; SELECT 1; <the case>; COMMIT`, run `--n` times per
round; the rounds interleave the cases. Printed: the median over `--reps` rounds of this
process's CPU µs (process time) and of the server's (its postmaster and every process it
ran, from /proc, as `e2e.py` reads it) per transaction. The cases are the duplicate
check's statements (`bridge.mt.mails`): its advisory lock and its read.

    .venv/bin/python bench/pg_statement_micro.py [--reps 5] [--n 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import psycopg  # noqa: E402
from e2e import postgres_cpu  # noqa: E402

from bridge.mt.mails import _LOCK_KEYS  # noqa: E402
from tests.peers.postgres import throwaway_postgres  # noqa: E402

ONE_KEY = "SELECT pg_advisory_xact_lock(%(key)s)"
CHECK = "SELECT id FROM copies WHERE key = ANY(%(keys)s)"

Case = Callable[[Any, int], object]
CASES: dict[str, Case] = {
    "nothing more": lambda cur, i: None,
    "the lock (unnest of the keys, sorted)": lambda cur, i: cur.execute(_LOCK_KEYS, {"keys": [i]}),
    "the lock, one key without unnest": lambda cur, i: cur.execute(ONE_KEY, {"key": i}),
    "the check (= ANY of the keys)": lambda cur, i: cur.execute(CHECK, {"keys": [str(i)]}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--n", type=int, default=2000, help="transactions per case per round")
    args = parser.parse_args()
    with throwaway_postgres({}) as url:
        conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        conn.execute("CREATE TABLE copies (id bigserial PRIMARY KEY, key text)")
        conn.commit()
        found: dict[str, list[tuple[float, float]]] = {name: [] for name in CASES}
        for _ in range(args.reps):
            for name, case in CASES.items():
                server0, client0 = postgres_cpu(url) or 0.0, time.process_time()
                for i in range(args.n):
                    with conn.cursor() as cur:
                        cur.execute("SELECT 1")
                        case(cur, i)
                    conn.commit()
                client = (time.process_time() - client0) / args.n * 1e6
                server = ((postgres_cpu(url) or 0.0) - server0) / args.n * 1e6
                found[name].append((client, server))
        conn.close()
    print("µs CPU per transaction (median of rounds): client / server")
    for name, values in found.items():
        client = statistics.median(c for c, _ in values)
        server = statistics.median(s for _, s in values)
        print(f"  {name:40} {client:6.0f} / {server:6.0f}")


if __name__ == "__main__":
    main()
