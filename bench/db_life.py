"""The database side of an SMS's life after the intake, old against new in one run: claim,
submitted record, receipt insert, receipts round, for one-order mails.

`low` runs each step for one order at a time (a bridge at a few mails a second: every
step is its own transaction), `burst` for 50 at a time (full batches). Each run is a
fresh process on a fresh database (SQLite on /dev/shm unless --dir, or a throwaway
PostgreSQL with --postgres); runs of this checkout and of --baseline alternate, and the
medians of CPU µs per mail (user + system, the steps only) are printed with the
statements and commits per mail (counted in one more run of each, not timed: a cursor
event listener sends the hot statements through SQLAlchemy's execution again).

    .venv/bin/python bench/db_life.py --baseline /tmp/base --mode low --mails 500 --reps 6
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def life(mode: str, mails: int, url: str, count_statements: bool = False) -> dict[str, object]:
    """One run in this process (with whatever `bridge` is on the path)."""
    from rows import one_sms_mail
    from sqlalchemy import event, text

    import bridge
    from bridge.db.clock import utcnow
    from bridge.db.engine import open_engine, upgrade
    from bridge.db.store import run_sync
    from bridge.mt.dispatch_record import Claim, Outcome, OutcomeKind, record_outcomes
    from bridge.mt.mails import insert_mails
    from bridge.mt.receipts import apply_receipts, insert_receipts
    from bridge.outcomes.steps import STEPS
    from bridge.tenants.admin import add_customer, add_user
    from bridge.values import Receipt, ReceiptState

    engine = open_engine(url)
    upgrade(engine)
    run_sync(engine, add_customer, "acme", {"default_country": "DE"})
    uid = run_sync(engine, add_user, "alice@example.com", "acme", settings={"notify": "failures"})
    new = [one_sms_mail(uid, f"M{i}", f"+49170{i:07d}") for i in range(mails)]
    for k in range(0, mails, 500):
        run_sync(engine, insert_mails, new[k : k + 500])
    counts = {"statements": 0, "commits": 0}

    def count(key: str) -> None:
        counts[key] += 1

    if count_statements:
        event.listen(engine, "before_cursor_execute", lambda *_: count("statements"))
        event.listen(engine, "commit", lambda *_: count("commits"))
    batch = 1 if mode == "low" else 50
    done = sent = 0
    start = time.process_time()
    while done < mails:
        at = utcnow()
        claimed = run_sync(engine, record_outcomes, [Claim(batch, 60.0)], steps=STEPS)[0]
        assert isinstance(claimed, list)  # a claim's result is its orders
        if not claimed:
            break
        outcomes = []
        for order in claimed:
            sent += 1
            outcomes.append(
                Outcome(
                    order.id,
                    OutcomeKind.SUBMITTED,
                    transport="smsc",
                    message_ids=(f"id{sent}",),
                    submitted_at=at,
                )
            )
        run_sync(engine, record_outcomes, outcomes, steps=STEPS)
        receipts = [
            (Receipt("smsc", o.message_ids[0], ReceiptState.DELIVERED), utcnow()) for o in outcomes
        ]
        run_sync(engine, insert_receipts, receipts)
        run_sync(engine, apply_receipts, utcnow(), 200, 3600.0, steps=STEPS, orphan=False)
        done += len(claimed)
    cpu = time.process_time() - start
    with engine.connect() as conn:
        final: dict[str, int] = dict(
            conn.execute(text('SELECT status, count(*) FROM "order" GROUP BY status')).all()
        )
    engine.dispose()
    return {
        "code": str(Path(bridge.__file__).resolve().parent.parent),
        "mails": done,
        "us_per_mail": round(cpu / max(1, done) * 1e6, 1),
        "statements_per_mail": round(counts["statements"] / max(1, done), 2),
        "commits_per_mail": round(counts["commits"] / max(1, done), 2),
        "final": final,
    }


@contextmanager
def databases(postgres: bool, directory: str) -> Iterator[Iterator[str]]:
    """Fresh database URLs: SQLite files, or databases on one throwaway PostgreSQL."""
    if not postgres:
        yield (f"sqlite:///{tempfile.mkdtemp(dir=directory)}/bridge.db" for _ in itertools.count())
        return
    sys.path.insert(0, str(HERE))
    from sqlalchemy import create_engine, text

    from tests.peers.postgres import throwaway_postgres

    with throwaway_postgres() as server:

        def fresh() -> Iterator[str]:
            for n in itertools.count():
                admin = create_engine(server, isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(text(f"CREATE DATABASE life{n}"))
                admin.dispose()
                yield server.rsplit("/", 1)[0] + f"/life{n}"

        yield fresh()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--baseline", help="a checkout of another commit (e.g. from `git archive`)")
    p.add_argument("--mode", choices=["low", "burst"], default="low")
    p.add_argument("--mails", type=int, default=500)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL, not SQLite")
    p.add_argument("--dir", default="/dev/shm", help="where the SQLite files go")
    p.add_argument("--one", help=argparse.SUPPRESS)  # a single run's database URL
    p.add_argument("--count", action="store_true", help=argparse.SUPPRESS)  # that run counts
    a = p.parse_args()
    if a.one:
        print(json.dumps(life(a.mode, a.mails, a.one, a.count)))
        return
    codes = [str(HERE)] + ([str(Path(a.baseline).resolve())] if a.baseline else [])
    results: dict[str, list[dict[str, object]]] = {c: [] for c in codes}
    counted: dict[str, dict[str, object]] = {}
    with databases(a.postgres, a.dir) as urls:

        def run(code: str, *extra: str) -> dict[str, object]:
            one = ["--one", next(urls), "--mode", a.mode, "--mails", str(a.mails), *extra]
            out = subprocess.run(
                [sys.executable, __file__, *one],
                env={**os.environ, "PYTHONPATH": code},
                capture_output=True,
                text=True,
                check=True,
            )
            found: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
            return found

        for _ in range(a.reps):
            for code in reversed(codes):  # the baseline first in each pair
                results[code].append(run(code))
        for code in codes:
            counted[code] = run(code, "--count")
    for code, runs in results.items():
        us = [float(str(r["us_per_mail"])) for r in runs]
        first = counted[code]
        print(
            f"{'postgresql' if a.postgres else 'sqlite'} {a.mode:5} {code}: "
            f"{statistics.median(us):,.0f} µs CPU/mail (median of {us}), "
            f"{first['statements_per_mail']} statements and {first['commits_per_mail']} commits"
            f" per mail; final {first['final']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
