"""SMPP server benchmark: submit_sm/s accepted (committed) through one bind at window 10 and 50.

The bridge's SMPP server (bridge/smpp_server) runs in its own process, pinned to CPU 1
when there are two, on a fresh SQLite database with the demo account; the ESME (our
SMPP session, no library overhead worth measuring) runs here on CPU 0 and keeps
`window` submit_sm outstanding. Every submit_sm_resp counted carries a message id given
only after the order's commit; afterwards the `order` rows are counted against them.
No dispatch runs: what is measured is the front door and its group commit.

  .venv/bin/python bench/smpp_server_bench.py [--seconds 3] [--windows 10,50]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.db.engine import open_engine, upgrade
from bridge.db.store import Store, run_sync
from bridge.smpp import constants as c
from bridge.smpp.pdu import Bind, BindResp, Pdu, SubmitSm, SubmitSmResp
from bridge.smpp.session import SmppSession
from bridge.smpp_server.accounts import ensure_demo_account, set_limits
from bridge.smpp_server.server import SmppServer
from bridge.smpp_server.settings import SmppServerSettings
from bridge.tenants.admin import ensure_demo

PASSWORD = "bench"


def _server(url: str, port_q: mp.Queue[int]) -> None:  # runs in the server process
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})

    async def main() -> None:
        store = Store(open_engine(url))
        server = SmppServer(SmppServerSettings(enabled=True, port=0), {}, store)
        _, port = await server.start()
        port_q.put(port)
        await asyncio.Event().wait()

    asyncio.run(main())


async def _nothing(pdu: Pdu) -> Pdu | None:
    return None


async def run_window(port: int, window: int, seconds: float) -> tuple[int, int, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    session = SmppSession(reader, writer, _nothing, window=window, name="bench-esme")
    reading = asyncio.create_task(session.run())
    resp = await session.request(Bind(c.BIND_TRANSMITTER, 0, "demo", PASSWORD))
    assert isinstance(resp, BindResp) and resp.status == 0, resp
    ok = refused = 0
    stop_at = 0.0
    pdu = SubmitSm(
        0,
        "4915550000001",
        "491701234567",
        b"benchmark message",
        source_addr_ton=1,
        source_addr_npi=1,
        dest_addr_ton=1,
        dest_addr_npi=1,
    )

    async def worker() -> None:
        nonlocal ok, refused
        while time.perf_counter() < stop_at:
            r = await session.request(pdu)
            if isinstance(r, SubmitSmResp) and r.status == 0 and r.message_id:
                ok += 1
            else:
                refused += 1

    try:
        for phase in ("warmup", "measure"):
            ok = refused = 0
            length = min(0.5, seconds / 4) if phase == "warmup" else seconds
            start = time.perf_counter()
            stop_at = start + length
            await asyncio.gather(*(worker() for _ in range(window)))
            elapsed = time.perf_counter() - start
    finally:
        await session.close()
        reading.cancel()
    return ok, refused, elapsed


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--windows", default="10,50")
    args = ap.parse_args()
    windows = [int(x) for x in args.windows.split(",")]
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {0})
    with tempfile.TemporaryDirectory(prefix="mailsms-smpp-bench-") as tmp:
        db = Path(tmp) / "bridge.db"
        url = f"sqlite:///{db}"
        engine = open_engine(url)
        upgrade(engine)
        run_sync(engine, ensure_demo)
        run_sync(engine, ensure_demo_account, PASSWORD)
        run_sync(engine, lambda conn: set_limits(conn, "demo", window=max(windows)))
        engine.dispose()
        q: mp.Queue[int] = mp.Queue()
        peer = mp.Process(target=_server, args=(url, q), daemon=True)
        peer.start()
        try:
            port = q.get(timeout=20)
            print("SMPP server: submit_sm accepted (committed) through one bind, SQLite")
            print(
                f"{'window':>7} {'accepted':>9} {'refused':>8} {'seconds':>8} {'submit_sm/s':>12}"
            )
            total = 0
            for w in windows:
                n, refused, secs = asyncio.run(run_window(port, w, args.seconds))
                total += n
                print(f"{w:>7} {n:>9} {refused:>8} {secs:>8.2f} {n / secs:>12,.0f}")
        finally:
            peer.terminate()
            peer.join(5)
        with sqlite3.connect(db) as conn:
            rows = conn.execute('SELECT count(*) FROM "order"').fetchone()[0]
        print(f"order rows: {rows} for {total}+ accepted in the measured phases (warm-ups too)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
