"""REST API benchmark: POST /api/v1/messages, the bridge in a process of its own.

`mailsms sandbox serve` (the SMSC, receipts on) runs on CPU 0 with this process,
`mailsms serve` on CPU 1: SQLite in a temp dir, its HTTP listener with the REST API,
bound to that SMSC, the demo customer with `notify = failures` and no limit per number
prefix (as the other benchmarks set it: their numbers run in sequence). An API key is
made with `mailsms api-key add`; this process keeps `--conc` HTTP/1.1 connections open
and sends `--sends` requests over them (a fresh number each; with `--idempotency`, each
with an `Idempotency-Key` of its own), a raw client writing prepared bytes, so that it
costs little beside the bridge. Then `--reads` status reads (`GET
/api/v1/messages/<id>` of the orders just sent, as an application polls them) and
`--pages` pages of the list (`GET /api/v1/messages?limit=50&after=<one of them>`).

Reported per run: requests/s answered `201` (from the first request to the last answer),
p50/p99 of a request's time, and the bridge's CPU µs per request twice (`/proc`: its
work, not the SMSC's): while the requests ran (the door; the dispatch runs meanwhile),
and until every order is final (end to end: submitted, receipt, final); the `order`
rows are counted against the `201`s; reads and pages a second, CPU µs per read and per
page. Each run a fresh bridge and database. With `--baseline DIR` another commit's
bridge (PYTHONPATH=DIR, e.g. from `git archive <commit> bridge templates dirsync | tar
-x -C DIR`) runs alternately with this checkout's.

  .venv/bin/python bench/api_bench.py [--sends 3000] [--conc 16] [--reps 3] [--reads 3000]
                                      [--pages 600] [--idempotency] [--baseline DIR]
                                      [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import servers

PEER_CPU = 0
FINAL = ("delivered", "undeliverable", "expired", "failed", "unconfirmed", "held")
WARM = 200


def _counts(db: Path) -> tuple[int, int, int]:
    """(order rows, final ones, held ones), read-only beside the bridge's writer (WAL)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            rows = conn.execute("SELECT status, count(*) FROM 'order' GROUP BY status").fetchall()
    except sqlite3.Error:
        return 0, 0, 0
    by = dict(rows)
    return sum(by.values()), sum(n for s, n in by.items() if s in FINAL), by.get("held", 0)


def _request(token: str, n: int, idempotency: bool) -> bytes:
    body = json.dumps(
        {"to": [f"+49170{n:07d}"], "text": f"Build {n} finished: 2 warnings, 0 errors."}
    ).encode()
    head = (
        f"POST /api/v1/messages HTTP/1.1\r\nHost: {servers.HOST}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    if idempotency:
        head += f"Idempotency-Key: bench-{n}\r\n"
    return head.encode() + b"\r\n" + body


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


def _read(token: str, path: str) -> bytes:
    return (
        f"GET /api/v1/{path} HTTP/1.1\r\nHost: {servers.HOST}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()


async def _clients(
    port: int, requests: list[bytes], expect: int, conc: int
) -> tuple[list[float], list[bytes]]:
    """`requests` over `conc` kept connections: each one's time in seconds, and the answers'
    bodies. An answer other than `expect` stops the run with it."""
    todo = iter(requests)
    times: list[float] = []
    bodies: list[bytes] = []

    async def lane() -> None:
        reader, writer = await asyncio.open_connection(servers.HOST, port)
        try:
            for request in todo:
                started = time.perf_counter()
                writer.write(request)
                status, body = await _answer(reader)
                if status != expect:
                    raise SystemExit(f"{request.split(b' HTTP')[0]!r}: {status} {body[:300]!r}")
                times.append(time.perf_counter() - started)
                bodies.append(body)
        finally:
            writer.close()

    await asyncio.gather(*(lane() for _ in range(conc)))
    return times, bodies


def _wait_http(port: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((servers.HOST, port), 1):
            return
        time.sleep(0.1)
    raise SystemExit(f"the bridge's HTTP listener did not open on port {port}")


def _wait_final(db: Path, count: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while _counts(db)[1] < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {_counts(db)[1]} of {count} orders final in {limit:.0f} s")
        time.sleep(0.02)


def run_once(
    code: str | None, a: argparse.Namespace, profile: Path | None = None
) -> dict[str, float]:
    """One fresh SMSC and bridge (the bridge's code from `code`, else this checkout), a
    warm-up of WARM requests, then the measured ones."""
    http_port = servers.free_port()
    with (
        tempfile.TemporaryDirectory(prefix="mailsms-api-") as tmp,
        servers.bridge_and_smsc(Path(tmp), code, profile=profile, http_port=http_port) as pair,
    ):
        _wait_http(http_port, 30)
        pair.cli("settings", "set", "--user", "demo@example.com", "notify", "failures")
        # the benchmark's numbers run in sequence: the SMS pumping check would hold them
        pair.cli(
            "customer", "access", "demo", "--velocity-suffix-digits", servers.VELOCITY_SUFFIX_DIGITS
        )
        token = pair.cli("api-key", "add", "bench", "--customer", "demo").strip()
        sends = [_request(token, n, a.idempotency) for n in range(WARM + a.sends)]
        asyncio.run(_clients(http_port, sends[:WARM], 201, a.conc))
        _wait_final(pair.db, WARM, a.timeout)
        bridge = pair.bridge
        if profile is not None:
            bridge.proc.send_signal(signal.SIGUSR1)  # the phase starts
        start, cpu = time.perf_counter(), bridge.cpu_seconds()
        times, answers = asyncio.run(_clients(http_port, sends[WARM:], 201, a.conc))
        took, door = time.perf_counter() - start, bridge.cpu_seconds() - cpu
        _wait_final(pair.db, WARM + a.sends, a.timeout)
        used = bridge.cpu_seconds() - cpu
        if profile is not None:
            bridge.proc.send_signal(signal.SIGUSR2)  # written to profile/phase/
            time.sleep(2.0)
        rows, _, held = _counts(pair.db)
        # then status reads of the orders just sent, as applications poll them
        ids = [json.loads(body)["orders"][0]["id"] for body in answers]
        reads = [_read(token, f"messages/{ids[n % len(ids)]}") for n in range(a.reads)]
        start, cpu = time.perf_counter(), bridge.cpu_seconds()
        asyncio.run(_clients(http_port, reads, 200, a.conc))
        read_took, read_cpu = time.perf_counter() - start, bridge.cpu_seconds() - cpu
        # and pages of the list, newest first, each from the mark of one of those orders
        pages = [
            _read(token, f"messages?limit=50&after={ids[n % len(ids)]}") for n in range(a.pages)
        ]
        start, cpu = time.perf_counter(), bridge.cpu_seconds()
        asyncio.run(_clients(http_port, pages, 200, a.conc))
        page_took, page_cpu = time.perf_counter() - start, bridge.cpu_seconds() - cpu
    if rows != WARM + a.sends:
        raise SystemExit(f"{WARM + a.sends} requests answered 201, {rows} order rows")
    if held:  # final without being sent: the figures would not be an SMS's
        raise SystemExit(f"{held} orders held (not sent)")
    times.sort()
    return {
        "rate": a.sends / took,
        "p50": times[len(times) // 2] * 1e3,
        "p99": times[int(len(times) * 0.99)] * 1e3,
        "door": door / a.sends * 1e6,
        "e2e": used / a.sends * 1e6,
        "reads": a.reads / read_took if a.reads else 0.0,
        "read_cpu": read_cpu / a.reads * 1e6 if a.reads else 0.0,
        "pages": a.pages / page_took if a.pages else 0.0,
        "page_cpu": page_cpu / a.pages * 1e6 if a.pages else 0.0,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sends", type=int, default=3000, help="requests per run (after a warm-up)")
    p.add_argument("--conc", type=int, default=16, help="kept connections, one request each")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--idempotency", action="store_true", help="an Idempotency-Key per request")
    p.add_argument("--reads", type=int, default=3000, help="status reads after the sends")
    p.add_argument("--pages", type=int, default=600, help="list pages (50 orders) after them")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--baseline", help="a checkout of another commit (PYTHONPATH)")
    p.add_argument("--profile", type=Path, help="one profiled run of this checkout, into DIR")
    a = p.parse_args()
    with contextlib.suppress(OSError):  # the clients with the SMSC, off the bridge's CPU
        os.sched_setaffinity(0, {PEER_CPU})
    if a.profile is not None:
        r = run_once(None, a, a.profile.resolve())
        print(f"profiled: {r['rate']:,.0f} requests/s, {r['e2e']:,.0f} µs CPU per request end "
              f"to end; {a.profile}/phase/")  # fmt: skip
        return
    codes: list[tuple[str, str | None]] = [("this", None)]
    if a.baseline:
        codes.append(("base", str(Path(a.baseline).resolve())))
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in codes}
    for rep in range(a.reps):
        for name, code in codes if rep % 2 == 0 else codes[::-1]:
            r = run_once(code, a)
            results[name].append(r)
            print(f"  rep {rep + 1} {name}: {r['rate']:,.0f} requests/s, p50 {r['p50']:.1f} "
                  f"p99 {r['p99']:.1f} ms, bridge {r['door']:,.0f} µs CPU per request at the "
                  f"door, {r['e2e']:,.0f} end to end; status reads {r['reads']:,.0f}/s, "
                  f"{r['read_cpu']:,.0f} µs CPU each; list pages {r['pages']:,.0f}/s, "
                  f"{r['page_cpu']:,.0f} µs CPU each", flush=True)  # fmt: skip
    for name, code in codes:
        runs = results[name]

        def med(k: str, runs: list[dict[str, float]] = runs) -> str:
            values = [r[k] for r in runs]
            return f"{statistics.median(values):,.0f} ({min(values):,.0f}..{max(values):,.0f})"

        print(f"api {name} ({code or 'this checkout'}): {a.sends} requests, {a.conc} "
              f"connections{', Idempotency-Key' if a.idempotency else ''}: {med('rate')} "
              f"requests/s; bridge µs CPU per request at the door {med('door')}, end to end "
              f"{med('e2e')}; {a.reads} status reads: {med('reads')}/s, {med('read_cpu')} µs "
              f"CPU each; {a.pages} list pages: {med('pages')}/s, {med('page_cpu')} µs CPU each "
              f"({a.reps} reps)")  # fmt: skip


if __name__ == "__main__":
    main()
