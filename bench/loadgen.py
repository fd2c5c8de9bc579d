"""A bounded, raw asyncio SMTP load generator (loopback only; no SMTP library).

Sends ~576-byte text/plain mails, one recipient each (`+49170NNNNNNN@<domain>`), over
C concurrent connections and prints one JSON line: mails accepted (250 after DATA),
errors (any other reply, or a broken connection), mails/s and latency percentiles.

  reuse   one connection per worker: banner, EHLO once, then MAIL/RCPT/DATA per mail;
          latency = MAIL sent -> 250 after the data.
  permsg  per mail: connect, banner, EHLO, MAIL, RCPT, DATA, QUIT, close;
          latency = connect -> 250 after the data.

With --pipelining, MAIL, RCPT and DATA go out in one write when the server's EHLO offers
PIPELINING (RFC 2920), as Postfix sends them, and the three replies are read after;
without it (or when it is not offered) each command waits for its reply.

Bounded by --n mails and --duration seconds, whichever comes first; workers still
busy 30 s after the deadline are cancelled. Rate = accepted / (start -> last 250).
With --rate R the load is offered at a constant R mails/s (mail k is not sent before
start + k/R; "late" counts mails sent more than 100 ms after their time, which means
the C connections could not keep up with R); without it, as fast as C connections go.

  python bench/loadgen.py --port 30025 --mode reuse --conc 64 --n 100000 --duration 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.util
import json
import os
import resource
import time
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"
GRACE_S = 30.0
BODY = (
    "Alarm: disk usage on host db-{host:05d} reached 91% (threshold 90%). "
    "Please check the volume /var/lib/data and rotate old logs. "
    "This text is sent as SMS by the mail-to-SMS bridge; keep it short. "
    "Ticket INC{ticket:07d} opened automatically, severity 2, team storage-ops. "
    "Reply STOP to pause alerts for 1 hour."
)


class SmtpReplyError(Exception):
    """The server answered something other than what the dialogue expects."""


def recipient(i: int, domain: str) -> str:
    """A valid German mobile number (0170 + 7 digits) at the bridge's domain."""
    return f"+49170{i % 10_000_000:07d}@{domain}"


def message(i: int, sender: str, rcpt: str) -> bytes:
    """A ~576-byte text/plain mail (8 header fields, ~300-byte body), CRLF, dot-safe."""
    headers = (
        f"From: Monitor <{sender}>\r\n"
        f"To: <{rcpt}>\r\n"
        f"Subject: Alert {i}\r\n"
        "Date: Sat, 22 Nov 2025 15:00:00 +0000\r\n"
        f"Message-ID: <{os.getpid()}.{i}@monitor.example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 7bit\r\n"
        "\r\n"
    )
    body = BODY.format(host=i % 100_000, ticket=i % 10_000_000)
    return (headers + body + "\r\n").encode("ascii")


def outlook_message(i: int, sender: str, rcpt: str) -> bytes:
    """A ~50 KB mail as Outlook sends a short one: multipart/alternative, a five-line
    text/plain part, and a quoted-printable text/html part that is mostly style sheet
    and markup (~650 lines of ~75 characters), CRLF, dot-safe."""
    head = (
        f"From: Alice Example <{sender}>\r\nTo: <{rcpt}>\r\nSubject: Pump {i}\r\n"
        "Date: Sat, 22 Nov 2025 15:00:00 +0000\r\n"
        f"Message-ID: <{os.getpid()}.{i}@client.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="_000_"\r\n\r\n'
    )
    text = (
        f"Pump P-{i % 1000} pressure high, please check.\r\n\r\nAlice Example\r\n"
        "Operations, Example GmbH\r\n+49 30 1234567\r\n"
    )
    style = "".join(
        f"p.MsoNormal{n}, li.MsoNormal{n}, div.MsoNormal{n} {{margin:0cm; font-size:11.0pt;=\r\n"
        f' font-family:"Calibri",sans-serif; mso-fareast-language:EN-US;}}\r\n'
        for n in range(320)
    )
    paragraph = text.replace("\r\n", "<br>")
    html = (
        '<html xmlns:o=3D"urn:schemas-microsoft-com:office:office"><head>\r\n'
        f'<style><!--\r\n{style}--></style></head><body lang=3D"DE">\r\n'
        f'<div class=3D"WordSection1"><p class=3D"MsoNormal">{paragraph}'
        "</p></div></body></html>\r\n"
    )
    return (
        head
        + "--_000_\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        + text
        + "\r\n--_000_\r\nContent-Type: text/html; charset=us-ascii\r\n"
        + "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        + html
        + "\r\n--_000_--\r\n"
    ).encode("ascii")


async def expect(reader: asyncio.StreamReader, code: int) -> bytes:
    """Read one (possibly multi-line) reply; raise unless its code is `code`."""
    return check(await read_reply(reader), code)


def check(reply: list[bytes], code: int) -> bytes:
    """The reply's lines joined; SmtpReplyError unless its code is `code`."""
    if reply[-1][:3] != str(code).encode():
        raise SmtpReplyError(reply[-1].decode("ascii", "replace").strip()[:200])
    return b"".join(reply)


async def read_reply(reader: asyncio.StreamReader) -> list[bytes]:
    """The lines of one (possibly multi-line) reply."""
    lines: list[bytes] = []
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("connection closed by the server")
        lines.append(line)
        if line[3:4] != b"-":
            return lines


@dataclass
class Stats:
    """Shared by all workers of one run (single-threaded: no locks needed)."""

    remaining: int
    deadline: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    replies: dict[str, int] = field(default_factory=dict)
    last_ok: float | None = None
    next_id: int = 0
    rate: float = 0.0  # mails/s offered; 0: as fast as the connections go
    start: float = 0.0
    late: int = 0

    def take(self) -> int:
        """The next mail's number, or -1 when the count or the time is used up."""
        if self.remaining <= 0 or time.perf_counter() >= self.deadline:
            return -1
        if self.rate and self.start + self.next_id / self.rate >= self.deadline:
            return -1
        self.remaining -= 1
        self.next_id += 1
        return self.next_id

    async def pace(self, i: int) -> None:
        """With a rate: wait until mail `i`'s time (start + (i-1)/rate)."""
        if not self.rate:
            return
        delay = self.start + (i - 1) / self.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.1:
            self.late += 1

    def error(self, exc: BaseException) -> None:
        self.errors += 1
        key = type(exc).__name__ if not isinstance(exc, SmtpReplyError) else str(exc)[:3]
        self.replies[key] = self.replies.get(key, 0) + 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{type(exc).__name__}: {exc}"[:200])


@dataclass(frozen=True)
class Job:
    port: int
    mode: str
    conc: int
    sender: str
    domain: str
    id_base: int
    pipelining: bool = False  # send MAIL, RCPT and DATA at once where PIPELINING is offered


# reader, writer, and whether this connection pipelines (asked for, and offered)
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]


async def connect(port: int, pipelining: bool = False) -> Conn:
    reader, writer = await asyncio.open_connection(HOST, port)
    await expect(reader, 220)
    writer.write(b"EHLO loadgen.example\r\n")
    ehlo = await expect(reader, 250)
    return reader, writer, pipelining and b"250-PIPELINING" in ehlo


async def transaction(conn: Conn, job: Job, i: int) -> None:
    reader, writer, grouped = conn
    n = job.id_base + i
    rcpt = recipient(n, job.domain)
    if grouped:  # one write; all three replies read before a refusal is raised
        writer.write(f"MAIL FROM:<{job.sender}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        replies = [await read_reply(reader) for _ in range(3)]
        for reply, code in zip(replies, (250, 250, 354), strict=True):
            check(reply, code)
        writer.write(message(n, job.sender, rcpt) + b".\r\n")
        await expect(reader, 250)
        return
    writer.write(f"MAIL FROM:<{job.sender}>\r\n".encode())
    await expect(reader, 250)
    writer.write(f"RCPT TO:<{rcpt}>\r\n".encode())
    await expect(reader, 250)
    writer.write(b"DATA\r\n")
    await expect(reader, 354)
    writer.write(message(n, job.sender, rcpt) + b".\r\n")
    await expect(reader, 250)


async def close(conn: Conn, *, quit_first: bool = True) -> None:
    reader, writer, _ = conn
    try:
        if quit_first:
            writer.write(b"QUIT\r\n")
            await expect(reader, 221)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def worker_reuse(st: Stats, job: Job) -> None:
    pc = time.perf_counter
    conn: Conn | None = None
    while (i := st.take()) >= 0:
        await st.pace(i)
        try:
            if conn is None:
                conn = await connect(job.port, job.pipelining)
            t0 = pc()
            await transaction(conn, job, i)
        except SmtpReplyError as exc:  # a refusal: reset the transaction, keep the connection
            st.error(exc)
            if conn is not None:
                try:
                    conn[1].write(b"RSET\r\n")
                    await expect(conn[0], 250)
                except (OSError, SmtpReplyError):
                    await close(conn, quit_first=False)
                    conn = None
            continue
        except OSError as exc:
            st.error(exc)
            if conn is not None:
                await close(conn, quit_first=False)
                conn = None
            continue
        t1 = pc()
        st.latencies.append(t1 - t0)
        st.last_ok = t1
    if conn is not None:
        try:
            await close(conn)
        except (OSError, SmtpReplyError) as exc:
            st.error(exc)


async def worker_permsg(st: Stats, job: Job) -> None:
    pc = time.perf_counter
    while (i := st.take()) >= 0:
        await st.pace(i)
        t0 = pc()
        conn: Conn | None = None
        try:
            conn = await connect(job.port, job.pipelining)
            await transaction(conn, job, i)
            t1 = pc()
            await close(conn)
        except (OSError, SmtpReplyError) as exc:
            st.error(exc)
            if conn is not None:
                await close(conn, quit_first=False)
            continue
        st.latencies.append(t1 - t0)
        st.last_ok = pc()


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[k]


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1e3, 3)


async def run(job: Job, n: int, duration: float, rate: float = 0.0) -> dict[str, Any]:
    """One bounded run; returns the result record."""
    t_start = time.perf_counter()
    st = Stats(remaining=n, deadline=t_start + duration, rate=rate, start=t_start)
    worker = worker_reuse if job.mode == "reuse" else worker_permsg
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    tasks = [asyncio.create_task(worker(st, job)) for _ in range(job.conc)]
    _, pending = await asyncio.wait(tasks, timeout=duration + GRACE_S)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = (st.last_ok or time.perf_counter()) - t_start
    lat = sorted(st.latencies)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {
        "mode": job.mode,
        "pipelining": job.pipelining,
        "conc": job.conc,
        "port": job.port,
        "ok": len(lat),
        "errors": st.errors,
        "error_replies": st.replies,
        "error_samples": st.error_samples,
        "hung_workers": len(pending),
        "wall_s": round(wall, 4),
        "mails_per_s": round(len(lat) / wall, 1) if wall > 0 else 0.0,
        "p50_ms": _ms(percentile(lat, 0.50)),
        "p99_ms": _ms(percentile(lat, 0.99)),
        "max_ms": _ms(lat[-1] if lat else None),
        "client_cpu_util": round(cpu / wall, 3) if wall > 0 else None,
        "offered_per_s": rate or None,
        "late": st.late,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=["reuse", "permsg"], default="reuse")
    p.add_argument("--conc", type=int, default=64)
    p.add_argument("--n", type=int, default=100_000, help="at most this many mails")
    p.add_argument("--duration", type=float, default=3.0, help="at most this many seconds")
    p.add_argument("--sender", default="demo@example.com")
    p.add_argument("--domain", default="eu.rsms.net")
    p.add_argument("--id-base", type=int, default=0, help="offset for numbers and Message-IDs")
    p.add_argument("--rate", type=float, default=0.0, help="offer this many mails/s (0: max)")
    p.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="event loop of the client (auto: uvloop when installed; it costs less CPU per mail)",
    )
    p.add_argument(
        "--pipelining",
        action="store_true",
        help="MAIL, RCPT and DATA in one write when the server offers PIPELINING (as Postfix)",
    )
    a = p.parse_args()
    if not 1024 <= a.port <= 65535:
        p.error("--port: expected an unprivileged port on 127.0.0.1")
    job = Job(
        port=a.port,
        mode=a.mode,
        conc=max(1, min(a.conc, 512)),
        sender=a.sender,
        domain=a.domain,
        id_base=a.id_base,
        pipelining=a.pipelining,
    )
    duration = max(0.1, min(a.duration, 900.0))
    coro = run(job, max(0, min(a.n, 1_000_000)), duration, max(0.0, a.rate))
    loop = a.loop
    if loop == "auto":
        loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    if loop == "uvloop":
        uvloop = importlib.import_module("uvloop")
        result: dict[str, Any] = uvloop.run(coro)
    else:
        result = asyncio.run(coro)
    result["loop"] = loop
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
