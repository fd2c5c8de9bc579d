"""Inbound benchmark: MO SMS from phones to mail (SMS2Mail), the bridge in a process of its own.

`mailsms sandbox serve` (the SMSC) runs on CPU 0 with this process, `mailsms serve` (the
bridge: SQLite in a temp dir, the demo customer, `numbers.toml` giving it the number
+4915550000002 with the default action, SMS2Mail to the number's fallback address, a
Maildir for the mails) on CPU 1. This process binds to the SMSC as the sandbox's phone and
submits `--mos` MO SMS, each from a phone of its own, `--window` at a time; the SMSC
delivers each to the bridge (`deliver_sm`), which commits it before it answers, routes
it (the inbound worker), queues its mail and writes the mail into the Maildir. Each
phone sends one MO, so the bridge runs with its `[inbound]` defaults: `mo_limit` (200
SMS from one sender to one number an hour) is never met, and every MO is routed and
mailed as before it existed; the figures include its one count per MO, as a bridge in
service pays it. (A run that sent more than `mo_limit` from one phone would measure
`limited` rows, not mails: it needs `mo_limit = 0` in its settings.)

Reported per run: MOs/s from the first submit until every MO's mail is sent, and the
bridge's CPU µs per MO over that time (`/proc/<pid>/stat`: its work, not the SMSC's);
each run a fresh bridge and database. With `--baseline DIR` another commit's bridge
(PYTHONPATH=DIR, e.g. from `git archive <commit> bridge templates | tar -x -C DIR`)
runs alternately with this checkout's, in the same run.

  .venv/bin/python bench/inbound_bench.py [--mos 2000] [--window 10] [--reps 3]
                                          [--baseline DIR] [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # this checkout's SMPP layer

import servers

from bridge.sandbox.phone import PHONE_SYSTEM_ID
from bridge.smpp import constants as c
from bridge.smpp.address import source_address
from bridge.smpp.pdu import Bind, GenericNack, Pdu, SubmitSm
from bridge.smpp.session import SmppSession

NUMBER = "+4915550000002"
DESK = "desk@example.com"
PEER_CPU = 0


def _numbers(workdir: Path) -> Path:
    path = workdir / "numbers.toml"
    path.write_text(
        f"""[[customer]]
name = "demo"

[[number]]
number = "{NUMBER}"
customer = "demo"
sharing = "dedicated"
fallback = ["{DESK}"]
"""
    )
    return path


def _sent(db: Path) -> int:
    """The SMS2Mail mails the bridge has sent (read-only, beside its writer: WAL)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            query = "SELECT count(*) FROM notice WHERE kind = 'sms2mail' AND status = 'sent'"
            return int(conn.execute(query).fetchone()[0])
    except sqlite3.Error:
        return 0


async def _phones(port: int, mos: int, window: int, first: int) -> None:
    """Bind as the sandbox's phone and submit `mos` MOs, `window` at a time; an MO the SMSC
    could not hand to the bridge yet (its bind still coming up) is sent again."""
    reader, writer = await asyncio.open_connection(servers.HOST, port)

    async def refuse(pdu: Pdu) -> Pdu | None:
        return GenericNack(pdu.sequence, c.ESME_RINVCMDID)

    session = SmppSession(reader, writer, refuse, name="phones", response_timeout=30.0)
    task = asyncio.create_task(session.run())
    try:
        bind = await session.request(Bind(c.BIND_TRANSMITTER, 0, PHONE_SYSTEM_ID, ""))
        assert bind.status == c.ESME_ROK, c.status_name(bind.status)
        dst = source_address(NUMBER)
        todo = iter(range(first, first + mos))
        refused = 0

        async def one(n: int) -> None:
            nonlocal refused
            src = source_address(f"+49170{n:07d}")
            text = f"Hello, this is phone {n}: yes, 3 pm works for me.".encode()
            while True:
                resp = await session.request(
                    SubmitSm(
                        0,
                        src.addr,
                        dst.addr,
                        text,
                        source_addr_ton=src.ton,
                        source_addr_npi=src.npi,
                        dest_addr_ton=dst.ton,
                        dest_addr_npi=dst.npi,
                    )
                )
                if resp.status == c.ESME_ROK:
                    return
                refused += 1
                if refused > 1000:
                    raise SystemExit(f"the SMSC refused MOs: {c.status_name(resp.status)}")
                await asyncio.sleep(0.05)

        async def lane() -> None:
            for n in todo:
                await one(n)

        await asyncio.gather(*(lane() for _ in range(window)))
    finally:
        await session.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def run_once(
    code: str | None, mos: int, window: int, limit: float, profile: Path | None = None
) -> tuple[float, float]:
    """One fresh SMSC and bridge (the bridge's code from `code`, else this checkout):
    (MOs/s, bridge CPU µs per MO), after a warm-up of 100 MOs. With `profile`, the bridge
    runs under `profile_bridge.py` and the measured phase's profiles go to
    `profile/phase/` (the CPU figure then includes the profiler's)."""
    with (
        tempfile.TemporaryDirectory(prefix="mailsms-inbound-") as tmp,
        servers.bridge_and_smsc(Path(tmp), code, profile=profile) as pair,
    ):
        pair.cli("inbound", "apply", str(_numbers(Path(tmp))))
        warm = 100
        asyncio.run(_phones(pair.smsc_port, warm, window, 0))
        _wait(pair.db, warm, limit)
        bridge = pair.bridge
        if profile is not None:
            bridge.proc.send_signal(signal.SIGUSR1)  # the phase starts
        start, cpu = time.perf_counter(), bridge.cpu_seconds()
        asyncio.run(_phones(pair.smsc_port, mos, window, warm))
        _wait(pair.db, warm + mos, limit)
        took, used = time.perf_counter() - start, bridge.cpu_seconds() - cpu
        if profile is not None:
            bridge.proc.send_signal(signal.SIGUSR2)  # written to profile/phase/
            time.sleep(2.0)
    return mos / took, used / mos * 1e6


def _wait(db: Path, count: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while _sent(db) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {_sent(db)} of {count} SMS2Mail mails sent in {limit:.0f} s")
        time.sleep(0.02)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--mos", type=int, default=2000, help="MO SMS per run, each from a phone of its own"
    )
    p.add_argument("--window", type=int, default=10, help="MOs in flight from the phones")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--baseline", help="a checkout of another commit (PYTHONPATH)")
    p.add_argument("--profile", type=Path, help="one profiled run of this checkout, into DIR")
    a = p.parse_args()
    with contextlib.suppress(OSError):  # the phones with the SMSC, off the bridge's CPU
        os.sched_setaffinity(0, {PEER_CPU})
    if a.profile is not None:
        rate, cpu = run_once(None, a.mos, a.window, a.timeout, a.profile.resolve())
        print(f"profiled: {rate:,.0f} MOs/s, {cpu:,.0f} µs CPU per MO; {a.profile}/phase/")
        return
    codes: list[tuple[str, str | None]] = [("this", None)]
    if a.baseline:
        codes.append(("base", str(Path(a.baseline).resolve())))
    results: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in codes}
    for rep in range(a.reps):
        for name, code in codes if rep % 2 == 0 else codes[::-1]:
            rate, cpu = run_once(code, a.mos, a.window, a.timeout)
            results[name].append((rate, cpu))
            print(f"  rep {rep + 1} {name}: {rate:,.0f} MOs/s, {cpu:,.0f} µs CPU per MO",
                  flush=True)  # fmt: skip
    for name, code in codes:
        rates = [r for r, _ in results[name]]
        cpus = [u for _, u in results[name]]
        print(f"inbound {name} ({code or 'this checkout'}): {a.mos} MOs -> SMS2Mail (Maildir), "
              f"window {a.window}: {statistics.median(rates):,.0f} MOs/s "
              f"({min(rates):,.0f}..{max(rates):,.0f}), bridge {statistics.median(cpus):,.0f} µs "
              f"CPU per MO ({min(cpus):,.0f}..{max(cpus):,.0f}, {a.reps} reps)")  # fmt: skip


if __name__ == "__main__":
    main()
