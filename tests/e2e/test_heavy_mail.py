"""Heavy mails get a clear answer while other SMTP sessions keep being served."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.conftest import make_settings
from tests.helpers import running_bridge
from tests.smtp_probe import RawSmtp


def _nested(depth: int) -> bytes:
    head = b"Subject: nested\r\nMIME-Version: 1.0\r\n"
    parts = []
    for i in range(depth):
        parts.append(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode())
    tail = b"".join(f"\r\n--b{i}--\r\n".encode() for i in reversed(range(depth)))
    return head + b"".join(parts) + b"Content-Type: text/plain\r\n\r\nhi" + tail


MAILS = {
    "1 MB body": b"Subject: big\r\n\r\n" + (b"word " * 78 + b"\r\n") * 2500,
    "5000-level nesting": _nested(5000),
    "200 emoji": b"Subject: emoji\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\n" + ("\U0001f600" * 200).encode() + b"\r\n",
}
EXPECTED = {"1 MB body": "552 5.3.4", "5000-level nesting": "554 5.6.0", "200 emoji": "250 2.0.0"}


async def _send(port: int, data: bytes) -> str:
    c = await RawSmtp.connect("127.0.0.1", port)
    await c.read_reply()
    await c.command("EHLO heavy")
    await c.command("MAIL FROM:<demo@example.com>")
    await c.command("RCPT TO:<+491701234567@eu.rsms.net>")
    await c.command("DATA")
    await c.send(data + b".\r\n")
    reply = await c.read_reply(timeout=30)
    await c.close()
    return reply


async def _ehlo_latency(port: int) -> float:
    started = time.perf_counter()
    c = await RawSmtp.connect("127.0.0.1", port)
    await c.read_reply()
    await c.command("EHLO light")
    await c.close()
    return time.perf_counter() - started


async def test_heavy_mails_get_answers_and_do_not_stall_others(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        port = ep.smtp[1]
        heavy = {name: asyncio.create_task(_send(port, data)) for name, data in MAILS.items()}
        latencies = []
        while not all(t.done() for t in heavy.values()):
            latencies.append(await _ehlo_latency(port))
        answers = {name: await task for name, task in heavy.items()}
    for name, prefix in EXPECTED.items():
        assert answers[name].startswith(prefix), (name, answers[name])
    assert "parts" in answers["1 MB body"]  # says how many parts it needs and may have
    assert "nested MIME containers" in answers["5000-level nesting"]
    assert latencies and max(latencies) < 1.0, latencies
