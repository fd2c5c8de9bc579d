"""SMPP benchmark: submit_sm/s through one bind at window 1, 10 and 50 against a fast peer.

The peer is a minimal responder on our own codec (answers every submit_sm at once, no
receipts) in a separate process pinned to another CPU when there are two, so the ESME
side is what is measured, as submits per second and this process's CPU per submit. Each
window runs for a fixed time (bounded), after a warm-up.

  .venv/bin/python bench/smpp_bench.py [--seconds 3] [--windows 1,10,50]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.smpp import constants as c
from bridge.smpp.pdu import Bind, BindResp, Pdu, SubmitSm, SubmitSmResp
from bridge.smpp.session import SmppSession
from bridge.transports.mo_parts import MemoryMoParts
from bridge.transports.smpp import SmppConfig, SmppTransport
from bridge.values import OutboundSms

GOAL = 5000.0


def _responder(port_q: mp.Queue[int]) -> None:  # runs in the peer process
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})

    async def main() -> None:
        ids = iter(range(1, 1 << 62))

        async def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            async def handler(pdu: Pdu) -> Pdu | None:
                if isinstance(pdu, Bind):
                    return BindResp(pdu.command_id | c.RESP_BIT, pdu.sequence, 0, "bench")
                if isinstance(pdu, SubmitSm):
                    return SubmitSmResp(pdu.sequence, 0, str(next(ids)))
                return None

            await SmppSession(r, w, handler, name="bench-smsc").run()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port_q.put(int(server.sockets[0].getsockname()[1]))
        await server.serve_forever()

    asyncio.run(main())


class _NoInbox:
    async def on_message(self, sms: object) -> None: ...
    async def on_receipt(self, receipt: object) -> None: ...


async def run_window(port: int, window: int, seconds: float) -> tuple[int, float, float]:
    """(submits, seconds, this process's CPU seconds) of the measured phase."""
    cfg = SmppConfig(
        name="bench",
        host="127.0.0.1",
        port=port,
        system_id="bench",
        password="pw",
        window=window,
        stats_interval=0.0,
    )
    t = SmppTransport(cfg, mo_parts=MemoryMoParts())
    await t.start(_NoInbox())  # type: ignore[arg-type]
    assert await t.wait_bound(5.0), t.last_error
    sms = OutboundSms("b", "+491701234567", "Bench", "benchmark message", "gsm7", False)
    stop_at = 0.0
    count = 0

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < stop_at:
            await t.submit(sms)
            count += 1

    try:
        for phase in ("warmup", "measure"):
            count = 0
            length = min(0.5, seconds / 4) if phase == "warmup" else seconds
            start, cpu_start = time.perf_counter(), time.process_time()
            stop_at = start + length
            await asyncio.gather(*(worker() for _ in range(window)))
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu_start
    finally:
        await t.stop()
    return count, elapsed, cpu


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--windows", default="1,10,50")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {0})
    q: mp.Queue[int] = mp.Queue()
    peer = mp.Process(target=_responder, args=(q,), daemon=True)
    peer.start()
    try:
        port = q.get(timeout=10)
        print("SMPP submit_sm through one bind (peer: responder on our codec, no receipts)")
        print(
            f"{'window':>7} {'submits':>9} {'seconds':>8} {'submit_sm/s':>12} {'µs CPU/submit':>14}"
        )
        rates: dict[int, float] = {}
        for w in (int(x) for x in args.windows.split(",")):
            n, secs, cpu = asyncio.run(run_window(port, w, args.seconds))
            rates[w] = n / secs
            print(f"{w:>7} {n:>9} {secs:>8.2f} {rates[w]:>12,.0f} {cpu / max(1, n) * 1e6:>14,.1f}")
        if 50 in rates:
            verdict = "met" if rates[50] >= GOAL else "NOT met"
            print(f"goal >= {GOAL:,.0f}/s at window 50: {verdict}")
    finally:
        peer.terminate()
        peer.join(5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
