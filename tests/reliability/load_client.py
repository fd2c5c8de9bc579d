"""A bounded SMTP load client that behaves like an MTA: it retries a mail until it is answered.

Mail `i` (one recipient `+49170<i>@eu.rsms.net`, Message-ID `<reliability-<i>@client.example>`)
is sent over one of `--conc` connections. After a broken connection, a timeout or a 4xx it
is sent again, unchanged (the bridge's dedupe turns a repeat of a mail it had already
committed into the same queued id); a 5xx is recorded as refused. Every final answer is
appended to the `--acks` file as one JSON line, flushed at once:
`{"i": 7, "id": "<queued id>"}` or `{"i": 7, "reply": "<5xx reply>"}`.

`--port` given twice (an MTA with two MX hosts): a mail goes to the first, and each
attempt after a failure to the next in turn. Each answer's record also has the time
(`t`, Unix seconds) and the port that answered.

Mails are numbered from `--first` (another client uses another range). New mails start
until `--max-mails` are sent, `--duration` seconds have passed or the
`--stop-file` exists; mails already started are finished (each given up after
`--give-up` seconds of retrying). Prints a JSON summary at the end.

  python -m tests.reliability.load_client --port 2525 --acks acks.jsonl --stop-file stop
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import IO

HOST = "127.0.0.1"
SENDER = "demo@example.com"


class Temporary(Exception):
    """A 4xx reply or a broken connection: send the mail again."""


class Refused(Exception):
    """A 5xx reply: the mail is refused for good."""


def recipient(i: int) -> str:
    return f"+49170{i % 10_000_000:07d}@eu.rsms.net"


def mail(i: int) -> bytes:
    return (
        f"From: <{SENDER}>\r\nTo: <{recipient(i)}>\r\nSubject: reliability {i}\r\n"
        f"Message-ID: <reliability-{i}@client.example>\r\n\r\n"
        f"Reliability test mail {i}: the pump in hall {i % 7} needs a check.\r\n.\r\n"
    ).encode("ascii")


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def reply(reader: asyncio.StreamReader) -> str:
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), 15.0)
        if not line:
            raise Temporary("connection closed by the server")
        lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
        if line[3:4] != b"-":
            return "\n".join(lines)


async def expect(conn: Conn, data: bytes, code: str) -> str:
    conn[1].write(data)
    text = await reply(conn[0])
    if text.startswith(code):
        return text
    if text.startswith("4"):
        raise Temporary(text)
    raise Refused(text)


async def connect(port: int) -> Conn:
    conn = await asyncio.wait_for(asyncio.open_connection(HOST, port), 10.0)
    text = await reply(conn[0])
    if not text.startswith("220"):
        conn[1].close()
        raise Temporary(text)
    await expect(conn, b"EHLO client.example\r\n", "250")
    return conn


async def transaction(conn: Conn, i: int) -> str:
    await expect(conn, f"MAIL FROM:<{SENDER}>\r\n".encode(), "250")
    await expect(conn, f"RCPT TO:<{recipient(i)}>\r\n".encode(), "250")
    await expect(conn, b"DATA\r\n", "354")
    text = await expect(conn, mail(i), "250")
    return text.split()[-1]  # "250 2.0.0 Ok: queued as <id>"


def close(conn: Conn | None) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):
            conn[1].close()


class Client:
    def __init__(self, args: argparse.Namespace, out: IO[str]) -> None:
        self.args = args
        self.out = out
        self.first: int = args.first
        self.next: int = args.first - 1
        self.deadline = time.monotonic() + args.duration
        self.acked = self.refused = self.failed = self.retries = 0

    def take(self) -> int | None:
        a = self.args
        if self.started() >= a.max_mails or time.monotonic() > self.deadline:
            return None
        if a.stop_file and Path(a.stop_file).exists():
            return None
        self.next += 1
        return self.next

    def started(self) -> int:
        return self.next - (self.first - 1)

    def record(self, entry: dict[str, object]) -> None:
        entry["t"] = round(time.time(), 3)
        self.out.write(json.dumps(entry) + "\n")
        self.out.flush()

    async def worker(self) -> None:
        conn: Conn | None = None
        ports: list[int] = self.args.port
        port = ports[0]
        while (i := self.take()) is not None:
            give_up = time.monotonic() + self.args.give_up
            attempt = 0
            while True:
                try:
                    if conn is None:
                        port = ports[attempt % len(ports)]
                        conn = await connect(port)
                    queued = await transaction(conn, i)
                except Refused as exc:
                    self.refused += 1
                    self.record({"i": i, "reply": str(exc), "port": port})
                    close(conn)
                    conn = None
                    break
                except (Temporary, OSError, TimeoutError) as exc:
                    close(conn)
                    conn = None
                    attempt += 1
                    self.retries += 1
                    if time.monotonic() > give_up:
                        self.failed += 1
                        self.record({"i": i, "reply": f"gave up: {exc}"})
                        break
                    await asyncio.sleep(min(0.5, 0.02 * 2 ** min(attempt, 5)))
                    continue
                self.acked += 1
                self.record({"i": i, "id": queued, "port": port})
                if port != ports[0]:  # the next mail goes to the first host again
                    with contextlib.suppress(Exception):
                        await expect(conn, b"QUIT\r\n", "221")
                    close(conn)
                    conn = None
                break
        if conn is not None:
            with contextlib.suppress(Exception):
                await expect(conn, b"QUIT\r\n", "221")
            close(conn)


async def main(args: argparse.Namespace, out: IO[str]) -> dict[str, int]:
    client = Client(args, out)
    await asyncio.gather(*(client.worker() for _ in range(args.conc)))
    return {
        "started": client.started(),
        "acked": client.acked,
        "refused": client.refused,
        "failed": client.failed,
        "retries": client.retries,
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, action="append", required=True)
    p.add_argument("--acks", required=True)
    p.add_argument("--first", type=int, default=1)
    p.add_argument("--conc", type=int, default=4)
    p.add_argument("--max-mails", type=int, default=2000)
    p.add_argument("--duration", type=float, default=120.0)
    p.add_argument("--give-up", type=float, default=60.0)
    p.add_argument("--stop-file", default="")
    return p.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    with open(arguments.acks, "a", encoding="utf-8") as acks:
        summary = asyncio.run(main(arguments, acks))
    print(json.dumps(summary), flush=True)
