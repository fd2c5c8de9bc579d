"""What PIPELINING is worth to an SMTP server, on bare aiosmtpd (no bridge code): the
server's CPU per mail with a client that waits for every reply (lock-step), one that
sends MAIL, RCPT and DATA in one write (pipelined), and the same against a server that
holds the replies of a group and writes them in one send (grouped, as the bridge's
listener does: `bridge/intake/server.py`).

The server runs on CPU 1, the client (16 connections, 0.6 KB mails) on CPU 0; each
variant in a fresh server process, the three in turn, --reps rounds.

    .venv/bin/python bench/pipelining_bench.py [--mails 20000] [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import time
from multiprocessing.queues import Queue
from typing import Any

from aiosmtpd.smtp import SMTP

MAIL = b"From: a@b\r\nTo: c@d\r\nSubject: x\r\n\r\n" + b"Hello world " * 40 + b"\r\n.\r\n"


class Answer250:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


class Grouped(SMTP):
    """aiosmtpd holding a 250 while the client's next command has arrived whole."""

    held = b""

    async def push(self, status: str | bytes) -> None:
        data = (status if isinstance(status, bytes) else status.encode()) + b"\r\n"
        if data.startswith(b"250 ") and b"\n" in self._reader._buffer:  # type: ignore[attr-defined]
            self.held += data
            return
        self._writer.write(self.held + data)
        self.held = b""
        await self._writer.drain()


def serve(ports: Queue[int], grouped: bool) -> None:
    os.sched_setaffinity(0, {1})

    async def main() -> None:
        kind = Grouped if grouped else SMTP
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: kind(Answer250()), "127.0.0.1", 0)
        ports.put(server.sockets[0].getsockname()[1])
        await asyncio.sleep(3600)

    asyncio.run(main())


async def client(port: int, mails: int, pipelined: bool, conc: int) -> None:
    async def one(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()
        writer.write(b"EHLO client\r\n")
        while not (await reader.readline()).startswith(b"250 "):
            pass
        for _ in range(count):
            if pipelined:
                writer.write(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
                for _ in range(3):
                    await reader.readline()
            else:
                for command in (b"MAIL FROM:<a@b>\r\n", b"RCPT TO:<c@d>\r\n", b"DATA\r\n"):
                    writer.write(command)
                    await reader.readline()
            writer.write(MAIL)
            await reader.readline()
        writer.write(b"QUIT\r\n")
        await reader.readline()
        writer.close()

    await asyncio.gather(*(one(mails // conc) for _ in range(conc)))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(grouped: bool, pipelined: bool, mails: int) -> tuple[float, float]:
    """(server µs of CPU per mail, mails/s)."""
    ports: Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(ports, grouped))
    server.start()
    try:
        port = ports.get(timeout=10)
        os.sched_setaffinity(0, {0})
        assert server.pid is not None
        cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
        asyncio.run(client(port, mails, pipelined, 16))
        cpu1, t1 = cpu_seconds(server.pid), time.perf_counter()
    finally:
        server.kill()
        server.join()
    return (cpu1 - cpu0) / mails * 1e6, mails / (t1 - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mails", type=int, default=20_000)
    p.add_argument("--reps", type=int, default=3)
    a = p.parse_args()
    variants = (("lock-step", False, False), ("pipelined", False, True), ("grouped", True, True))
    for _ in range(a.reps):
        for name, grouped, pipelined in variants:
            us, rate = run(grouped, pipelined, a.mails)
            print(f"{name:10} {us:6.0f} µs server CPU per mail, {rate:6.0f} mails/s", flush=True)


if __name__ == "__main__":
    main()
