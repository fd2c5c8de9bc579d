"""SMPP outbox benchmark: one receipt for a customer's SMPP client, queued, taken and
answered, with a history of deliver_sm sent before it.

For each `--history` (sent rows of the account already in the table, SQLite in a temp
dir, ANALYZEd as a long-running bridge's database is), `--receipts` receipts go one at
a time the way the SMPP server sends them: queued (the outcome step's transaction), then
taken and answered ESME_ROK (`take_due`, `answered`). Reported: this process's CPU µs per
receipt. A take that seeks in what is queued costs the same whatever the history; one
that reads what was sent grows with it.

  .venv/bin/python bench/outbox_bench.py [--history 300 3000 30000] [--receipts 300]

Run it against another commit's code with PYTHONPATH=DIR (`git archive <commit> bridge
templates | tar -x -C DIR`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # PYTHONPATH=DIR comes first

from sqlalchemy import text

from bridge.db.clock import utcnow
from bridge.db.engine import open_engine, upgrade
from bridge.smpp.constants import ESME_ROK
from bridge.smpp_outbox.queue import OutboxPdu, answered, mark_sent, queue_pdus, take_due

ACCOUNT = "app"
PDU = OutboxPdu("ACME", 5, 0, "+491701110000", 1, 1, b"id:1 stat:DELIVRD", 4)


def per_receipt(history: int, receipts: int) -> float:
    """CPU µs per receipt queued, taken and answered after `history` sent ones."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(f"sqlite:///{tmp}/bridge.db")
        upgrade(engine)
        now = utcnow()
        with engine.begin() as conn:
            for n in range(history):
                sent_at = now - timedelta(minutes=n + 1)
                queue_pdus(conn, ACCOUNT, "receipt", f"H{n}", (PDU,), sent_at)
            taken = take_due(conn, ACCOUNT, now, history, 60.0)
            assert len(taken) == history
            mark_sent(conn, [i.id for i in taken], now)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        start = time.process_time()
        for n in range(receipts):
            at = now + timedelta(seconds=n)
            with engine.begin() as conn:
                queue_pdus(conn, ACCOUNT, "receipt", f"P{n}", (PDU,), at)
            with engine.begin() as conn:
                (item,) = take_due(conn, ACCOUNT, at, 100, 60.0)
                answered(
                    conn,
                    [(item, ESME_ROK)],
                    at,
                    retry_delay=60.0,
                    retry_max=600.0,
                    give_up_after=1e6,
                )
        spent = time.process_time() - start
        engine.dispose()
    return spent / receipts * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--history", type=int, nargs="+", default=[300, 3000, 30000])
    p.add_argument("--receipts", type=int, default=300)
    a = p.parse_args()
    for history in a.history:
        print(f"{history:>7} sent before: {per_receipt(history, a.receipts):7.0f} µs per receipt")


if __name__ == "__main__":
    main()
