"""CPU per mail of the SMTP intake in one process: a bridge (the end-to-end benchmark's
settings) takes mails from clients on 127.0.0.1, one connection per client (`reuse`) or one
per mail (`permsg`); the figure is the process's CPU time (every thread, the clients' too)
per accepted mail. Its SMSC is a closed port: the orders are deferred, never sent. Old
against new: run it with each checkout's root as ROOT, alternately, and compare medians.

  .venv/bin/python bench/intake_cpu_bench.py [ROOT] [--mails 800] [--clients 8] [--mail outlook]

`--mail outlook`: a short mail as Outlook sends it (~48 KB, mostly the HTML part's style
sheet: `loadgen.outlook_message`) instead of the ~0.6 KB text mail.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


async def _send(host: str, port: int, mails: list[bytes], rcpts: list[str], per_mail: bool) -> None:
    reader = writer = None

    async def reply() -> bytes:
        assert reader is not None
        while True:
            line = await reader.readline()
            if line[3:4] != b"-":
                return line

    async def command(line: bytes, code: bytes) -> None:
        assert writer is not None
        writer.write(line)
        got = await reply()
        assert got[:3] == code, got

    for n, (mail, rcpt) in enumerate(zip(mails, rcpts, strict=True)):
        if writer is None or per_mail:
            reader, writer = await asyncio.open_connection(host, port)
            await reply()
            await command(b"EHLO bench\r\n", b"250")
        await command(b"MAIL FROM:<demo@example.com>\r\n", b"250")
        await command(f"RCPT TO:<{rcpt}>\r\n".encode(), b"250")
        await command(b"DATA\r\n", b"354")
        await command(mail + b".\r\n", b"250")
        if per_mail or n == len(mails) - 1:
            await command(b"QUIT\r\n", b"221")
            writer.close()
            writer = None


async def main(root: str, mails: int, clients: int, kind: str = "text") -> None:
    sys.path.insert(0, root)
    sys.path.insert(1, str(HERE))
    from loadgen import message, outlook_message
    from servers import VELOCITY_SUFFIX_DIGITS, e2e_config

    from bridge.app import Bridge
    from bridge.intake.access_store import set_access
    from bridge.settings import load_settings

    if kind == "outlook":
        message = outlook_message

    tmp = Path(tempfile.mkdtemp())
    # the end-to-end benchmark's bridge, its SMSC a closed port: the orders stay queued, so
    # the process does the intake's work only
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    smsc_port = closed.getsockname()[1]
    closed.close()
    config = e2e_config(tmp, 0, smsc_port, f"sqlite:///{tmp / 'bridge.db'}")
    settings = load_settings(config, environ={})
    bridge = Bridge(settings)
    ep = await bridge.start()
    assert bridge.store is not None
    # as bench/e2e.py: no order held by the pumping check
    await bridge.store.call(
        set_access, "demo", {"velocity_suffix_digits": int(VELOCITY_SUFFIX_DIGITS)}
    )
    host, port = ep.smtp
    out = {}
    try:
        n = 0
        for mode in ("reuse", "permsg", "reuse", "permsg"):
            per = mails // clients
            batches = []
            for _ in range(clients):
                rcpts = [f"+49170{(n + i) % 10_000_000:07d}@eu.rsms.net" for i in range(per)]
                batches.append(
                    ([message(n + i, "demo@example.com", r) for i, r in enumerate(rcpts)], rcpts)
                )
                n += per
            start = time.process_time()
            await asyncio.gather(*(_send(host, port, m, r, mode == "permsg") for m, r in batches))
            out[mode] = (time.process_time() - start) / (per * clients) * 1e6  # the 2nd run
    finally:
        await bridge.stop(grace=5.0)
    print(repr({f"{k} µs CPU/mail": round(v, 1) for k, v in out.items()}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("root", nargs="?", default=str(HERE.parent))
    parser.add_argument("--mails", type=int, default=600)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--mail", choices=("text", "outlook"), default="text")
    args = parser.parse_args()
    asyncio.run(main(args.root, args.mails, args.clients, args.mail))
