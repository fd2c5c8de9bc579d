"""Push benchmark: HTTP pushes drained to one receiver, with its connection kept or not.

`--pushes` pushes are queued at once (SQLite in a temp dir) and worked off by the push
worker (`bridge.push.worker.Pusher`, its `step` in a loop, as the bridge runs it) to a
receiver in its own process on 127.0.0.1 (this file run with `--serve`: a raw asyncio
HTTP/1.1 server that answers 200 and keeps connections open; for https, a
certificate for 127.0.0.1 from a throwaway CA the worker is told to trust). Reported per
setting of `[push] keepalive` (0: a connection per push, as before it existed), in the
same run, interleaved: pushes/s, this process's CPU µs per push (claim, request, record),
and the connections the receiver saw.

  .venv/bin/python bench/push_bench.py [--pushes 1000] [--reps 2] [--scheme http|https|both]
                                       [--concurrency 4] [--keepalive 2]

Run it against another commit's code with PYTHONPATH=DIR (`git archive <commit> bridge
templates | tar -x -C DIR`); a bridge without `[push] keepalive` runs both rows alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1]))  # PYTHONPATH=DIR comes first

from bridge.db.clock import utcnow
from bridge.db.engine import open_engine, upgrade
from bridge.db.store import Store, run_sync
from bridge.push.queue import queue_push
from bridge.push.settings import PushSettings
from bridge.push.worker import Pusher

HOST = "127.0.0.1"


async def _serve(port: int, cert_dir: str) -> None:
    """The receiver: 200 to every request, connections kept; prints its counts on SIGTERM."""
    tls = None
    if cert_dir:
        import ssl

        import trustme

        ca = trustme.CA()
        ca.cert_pem.write_to_path(os.path.join(cert_dir, "ca.pem"))
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(HOST).configure_cert(tls)
    counts = {"connections": 0, "requests": 0}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counts["connections"] += 1
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                counts["requests"] += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, HOST, port, ssl=tls)
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    print("ready", flush=True)
    await stop
    server.close()
    print(f"connections {counts['connections']} requests {counts['requests']}", flush=True)


@contextlib.contextmanager
def _receiver(tls: bool) -> Iterator[tuple[int, str, subprocess.Popen[str]]]:
    """The receiver in its own process: (port, CA file or "", process)."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.closing(_socket()) as sock:
        port = sock.getsockname()[1]
        sock.close()
        cmd = [sys.executable, __file__, "--serve", str(port)]
        cmd += ["--cert-dir", tmp] if tls else []
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("the receiver did not start")
        try:
            yield port, os.path.join(tmp, "ca.pem") if tls else "", proc
        finally:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(10)


def _socket() -> Any:
    import socket

    sock = socket.socket()
    sock.bind((HOST, 0))
    return sock


async def drain(url: str, count: int, keepalive: float, concurrency: int) -> tuple[float, float]:
    """(pushes/s, CPU µs per push) for `count` pushes to `url` queued at once."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(f"sqlite:///{tmp}/bridge.db")
        upgrade(engine)
        target = {"type": "push", "url": url}
        now = utcnow()
        for _ in range(count):
            run_sync(
                engine, queue_push, 0, None, target, '{"a": 1}', "application/json", now, 3600.0
            )
        store = Store(engine)
        # an older bridge (PYTHONPATH=DIR) has no keepalive: a connection per push
        kept = {"keepalive": keepalive} if "keepalive" in PushSettings.model_fields else {}
        settings = PushSettings(
            allow_http=True, allow_hosts=(HOST,), concurrency=concurrency, timeout=10.0, **kept
        )
        pusher = Pusher(settings, store, lambda conn, customer: None)
        try:
            start, cpu = time.perf_counter(), time.process_time()
            sent = 0
            while sent < count:
                done = await pusher.step()
                if not done:
                    raise SystemExit(f"only {sent} of {count} pushes sent (see the log)")
                sent += done
            took = time.perf_counter() - start
            cpu = time.process_time() - cpu
        finally:
            if hasattr(pusher, "close"):  # an older bridge's pusher kept no connections
                await pusher.close()
            await store.close()
            engine.dispose()
        return count / took, cpu / count * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pushes", type=int, default=1000)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument(
        "--scheme", choices=("http", "https", "both"), default="both", help="the receiver's"
    )
    p.add_argument("--concurrency", type=int, default=4, help="[push] concurrency")
    p.add_argument(
        "--keepalive", type=float, default=2.0, help="[push] keepalive to compare with 0"
    )
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    p.add_argument("--cert-dir", default="", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve is not None:
        asyncio.run(_serve(a.serve, a.cert_dir))
        return
    schemes = ("http", "https") if a.scheme == "both" else (a.scheme,)
    rows = [(scheme, keepalive) for scheme in schemes for keepalive in (0.0, a.keepalive)]
    results: dict[tuple[str, float], list[tuple[float, float]]] = {row: [] for row in rows}
    connections: dict[tuple[str, float], list[str]] = {row: [] for row in rows}
    for _ in range(a.reps):
        for scheme, keepalive in rows:
            with _receiver(scheme == "https") as (port, ca_file, proc):
                if ca_file:
                    os.environ["SSL_CERT_FILE"] = ca_file  # the worker's context trusts the CA
                url = f"{scheme}://{HOST}:{port}/hook"
                run = asyncio.run(drain(url, a.pushes, keepalive, a.concurrency))
                results[scheme, keepalive].append(run)
                proc.terminate()
                out, _ = proc.communicate(timeout=10)
                connections[scheme, keepalive].append(out.strip().split("\n")[-1])
    for (scheme, keepalive), runs in results.items():
        rates = [r for r, _ in runs]
        cpus = [c for _, c in runs]
        print(f"{scheme} keepalive {keepalive:g}: {statistics.median(rates):,.0f} pushes/s, "
              f"{statistics.median(cpus):,.0f} µs CPU per push (runs: "
              f"{', '.join(f'{c:,.0f}' for c in cpus)}); receiver: "
              f"{'; '.join(connections[scheme, keepalive])}")  # fmt: skip


if __name__ == "__main__":
    main()
