"""DATA benchmark: the server's CPU per mail for aiosmtpd's own DATA (one line per await)
against the bridge's `DataInBlocks` (whole lines in blocks), same run, same client.

Each variant is an SMTP server in its own process (pinned to CPU 1 where there are two)
whose handler only answers 250; the client (this process, CPU 0) sends `--mails` mails
over `--conc` connections, one transaction after the other on each. The figure is the
server process's CPU time (user + system, from /proc) per mail, for a short text mail
(~0.6 KB, 13 lines: the load generator's) and a short mail as Outlook sends it (~48 KB,
~670 lines, mostly the HTML part's style sheet: `loadgen.outlook_message`). Both servers
run at once; batches of `--mails` alternate between them (`--reps` each, the order
swapped every rep), so a phase of the machine falls on both; reported: medians, and the
median of the per-pair ratios with their range.

  .venv/bin/python bench/data_bench.py [--mails 800] [--conc 8] [--reps 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.append(str(HERE.parent))
TWO_CPUS = (os.cpu_count() or 1) >= 2


def _text_mail(n: int) -> bytes:
    from loadgen import message

    return message(n, "demo@example.com", "+491701234567@eu.rsms.net")


def _outlook_mail(n: int) -> bytes:
    from loadgen import outlook_message

    return outlook_message(n, "demo@example.com", "+491701234567@eu.rsms.net")


async def _serve(kind: str) -> None:
    from aiosmtpd.smtp import SMTP

    from bridge.intake.server import DataInBlocks

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 OK"

    cls = SMTP if kind == "plain" else DataInBlocks
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: cls(Handler(), data_size_limit=0, decode_data=False, hostname="bench"),
        "127.0.0.1",
        0,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


async def _client(port: int, mails: list[bytes]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def reply() -> bytes:
        while True:
            line = await reader.readline()
            if line[3:4] != b"-":
                return line

    await reply()
    writer.write(b"EHLO bench\r\n")
    await reply()
    for mail in mails:
        for line in (
            b"MAIL FROM:<a@client.example>\r\n",
            b"RCPT TO:<b@eu.rsms.net>\r\n",
            b"DATA\r\n",
        ):
            writer.write(line)
            await reply()
        writer.write(mail + b".\r\n")
        assert (await reply())[:3] == b"250"
    writer.write(b"QUIT\r\n")
    await reply()
    writer.close()


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _start(kind: str) -> tuple[asyncio.subprocess.Process, int]:
    cmd = [sys.executable, __file__, "--serve", kind]
    if TWO_CPUS:
        cmd = ["taskset", "-c", "1", *cmd]
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, cwd=HERE)
    assert proc.stdout is not None
    return proc, int(await proc.stdout.readline())


async def _batch(
    proc: asyncio.subprocess.Process, port: int, mails: list[bytes], conc: int
) -> float:
    """The server's CPU µs per mail for `mails` sent over `conc` connections."""
    start = _cpu(proc.pid)
    per = len(mails) // conc
    await asyncio.gather(*(_client(port, mails[i * per : (i + 1) * per]) for i in range(conc)))
    return (_cpu(proc.pid) - start) / (per * conc) * 1e6


async def main(args: argparse.Namespace) -> None:
    if TWO_CPUS:
        os.sched_setaffinity(0, {0})
    sys.path.insert(0, str(HERE))
    servers = {kind: await _start(kind) for kind in ("plain", "blocks")}
    results = {}
    try:
        for name, make in (("text 0.6 KB", _text_mail), ("outlook 48 KB", _outlook_mail)):
            mails = [make(i) for i in range(args.mails)]
            for _proc, port in servers.values():
                await _client(port, mails[:50])  # warm-up
            runs: dict[str, list[float]] = {"plain": [], "blocks": []}
            for rep in range(args.reps):  # both servers up; batches alternate, order swapped
                for kind in ("plain", "blocks") if rep % 2 == 0 else ("blocks", "plain"):
                    runs[kind].append(await _batch(*servers[kind], mails, args.conc))
            plain, blocks = (statistics.median(runs[k]) for k in ("plain", "blocks"))
            pairs = [b / p for p, b in zip(runs["plain"], runs["blocks"], strict=True)]
            results[name] = {
                "bytes": len(mails[0]),
                "aiosmtpd µs/mail": round(plain, 1),
                "blocks µs/mail": round(blocks, 1),
                "blocks/aiosmtpd": round(statistics.median(pairs), 3),
                "runs": runs,
            }
            print(
                f"{name:12} ({len(mails[0]):6} B): aiosmtpd {plain:7.1f} µs/mail, "
                f"blocks {blocks:7.1f} µs/mail, ratio (median of {len(pairs)} pairs) "
                f"{statistics.median(pairs):.3f} ({min(pairs):.3f}..{max(pairs):.3f})",
                flush=True,
            )
    finally:
        for proc, _ in servers.values():
            proc.kill()
            await proc.wait()
    print(json.dumps({"kind": "data", **results}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=800)
    parser.add_argument("--conc", type=int, default=8)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--serve", choices=("plain", "blocks"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(_serve(args.serve) if args.serve else main(args))
