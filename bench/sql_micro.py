"""Per-statement cost of the hot statements after the intake: `conn.execute` (SQLAlchemy's
execution) against `bridge.db.prepared` (compiled once, run on the driver), same process,
interleaved, on a SQLite file with the schema and a few hundred mails in it.

    .venv/bin/python bench/sql_micro.py [--reps 7] [--n 2000]

Prints the median µs of CPU (process time) per execution of each statement both ways.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from rows import one_sms_mail

from bridge.db import prepared
from bridge.db.clock import utcnow
from bridge.db.engine import open_engine, upgrade
from bridge.db.queue import _select, _take
from bridge.db.store import run_sync
from bridge.inbound.store import _NEWEST_CONVERSATIONS, newest_conversations_values
from bridge.mt.mails import _EARLIER_COPIES, insert_mails
from bridge.mt.orders import _QUEUE, _SET_FINAL_MANY
from bridge.mt.receipts import _MATCHED, _OPEN_PARTS
from bridge.outcomes.final_row import FINAL_ROWS
from bridge.tenants.admin import add_customer, add_user


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    engine = open_engine(f"sqlite:///{tempfile.mkdtemp()}/micro.db")
    upgrade(engine)
    run_sync(engine, add_customer, "acme", {"default_country": "DE"})
    user = run_sync(engine, add_user, "alice@example.com", "acme")
    run_sync(
        engine, insert_mails, [one_sms_mail(user, f"M{n}", f"+49170{n:07d}") for n in range(500)]
    )
    now = utcnow()
    cases: dict[str, tuple[Any, dict[str, Any]]] = {
        "claim: take (UPDATE IN … RETURNING)": (
            _take(_QUEUE),
            {"ids": ["M7.1"], "now": now + timedelta(days=9), "until": now},
        ),
        "final: UPDATE IN … RETURNING": (
            _SET_FINAL_MANY,
            {"f_ids": ["M8.1"], "f_status": "queued", "f_at": now, "f_error": ""},
        ),
        "final steps: FINAL_ROWS": (FINAL_ROWS, {"order_ids": ["M9.1"]}),
        "receipts: matched (none new)": (_MATCHED["sqlite"], {"limit": 100, "since": now}),
        "receipts: open parts": (_OPEN_PARTS, {"ids": ["M10.1"]}),
        "intake: conversation_senders": (
            _NEWEST_CONVERSATIONS["sqlite"],
            newest_conversations_values(
                "sqlite", [(user, "+491700000011")], now - timedelta(days=7)
            ),
        ),
        "intake: earlier copies": (_EARLIER_COPIES, {"keys": ["k1"], "since": now}),
    }
    lane = _select(_QUEUE, _QUEUE.lanes[0], "sqlite", ())
    cases["claim: lane select"] = (lane, {"now": now, "limit": 1})
    print(f"{'statement':40s} {'conn.execute':>14s}   {'prepared':>11s}   (µs CPU per run)")
    with engine.connect() as conn, conn.begin():
        for name, (stmt, values) in cases.items():
            old = _timed(lambda s=stmt, v=values: conn.execute(s, v).all(), args)  # type: ignore[misc]
            new = _timed(lambda s=stmt, v=values: prepared.fetch(conn, s, v), args)  # type: ignore[misc]
            a = [tuple(r) for r in conn.execute(stmt, values).all()]
            b = [tuple(r) for r in prepared.fetch(conn, stmt, values)]
            assert a == b, (name, a, b)
            print(f"{name:40s} {old:14.1f}   {new:11.1f}   ({len(a)} rows)")
        conn.rollback()


def _timed(fn: Callable[[], object], args: argparse.Namespace) -> float:
    out: list[float] = []
    for _ in range(args.reps):
        t = time.process_time()
        for _ in range(args.n):
            fn()
        out.append((time.process_time() - t) / args.n * 1e6)
    return statistics.median(out)


if __name__ == "__main__":
    main()
