"""DATA read in blocks of whole lines (`DataInBlocks`) answers and hands on what aiosmtpd's
own DATA does: the same replies and the same bytes, for the same client input sent over
TCP in random pieces, against a plain aiosmtpd server in the same test."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from bridge.intake.server import DataInBlocks
from tests.smtp_probe import RawSmtp

LINE = 64  # a short line limit: overlong lines (and the reader's overrun) are cheap to make
SIZE = 4000


class _Plain(SMTP):
    line_length_limit = LINE


class _Blocks(DataInBlocks):
    line_length_limit = LINE


class _Keep:
    """A handler that keeps each mail's bytes and answers 250."""

    def __init__(self) -> None:
        self.mails: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(envelope.original_content)
        return "250 OK"


@asynccontextmanager
async def _server(cls: type[SMTP], size: int) -> AsyncIterator[tuple[int, _Keep]]:
    keep = _Keep()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: cls(keep, data_size_limit=size, decode_data=False, hostname="probe"),
        "127.0.0.1",
        0,
    )
    try:
        yield server.sockets[0].getsockname()[1], keep
    finally:
        server.close()
        await server.wait_closed()


async def _session(port: int, data: bytes, cuts: list[int]) -> list[str]:
    """The replies to one mail whose data (and what follows it) goes out cut at `cuts`."""
    client = await RawSmtp.connect("127.0.0.1", port)
    replies = [await client.read_reply()]
    for command in (
        b"EHLO client\r\n",
        b"MAIL FROM:<a@b.example>\r\n",
        b"RCPT TO:<c@d.example>\r\n",
    ):
        client.writer.write(command)
        replies.append(await client.read_reply())
    client.writer.write(b"DATA\r\n")
    replies.append(await client.read_reply())
    last = 0
    for cut in [*cuts, len(data)]:
        client.writer.write(data[last:cut])
        await client.writer.drain()
        await asyncio.sleep(0.002)  # each piece its own segment, read on its own
        last = cut
    replies.append(await client.read_reply())
    if data.endswith(b"QUIT\r\n"):
        replies.append(await client.read_reply())
    client.writer.close()
    return replies


def _mail(rng: random.Random) -> bytes:
    """Header and body lines of any length up to past the limit, dot-stuffed lines, stray
    CR and LF (never a CRLF: a line break in the middle could end the data early), sometimes
    past the size limit; a pipelined QUIT after the end or not."""
    words = [b"a", b"Hello", b"=C3=A4", b".", b"..", b"\rX", b"X\n", b" ", b"<p>", b"x" * 8]
    lines = [b"Subject: probe", b"Content-Type: text/html", b""]
    for _ in range(rng.randrange(0, 400)):
        line = b"".join(rng.choice(words) for _ in range(rng.randrange(0, 8)))
        if rng.random() < 0.002:
            line = b"y" * rng.choice((LINE - 3, LINE - 2, LINE - 1, LINE + 1, 3 * LINE))
        lines.append(b".." if line == b"." else line)  # a lone dot would end it: stuffed
    body = b"".join(line + b"\r\n" for line in lines)
    return body + b".\r\n" + rng.choice((b"", b"QUIT\r\n"))


@pytest.mark.parametrize("seed", range(40))
async def test_same_replies_and_bytes_as_aiosmtpd(seed: int) -> None:
    rng = random.Random(seed)
    data = _mail(rng)
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randrange(0, 12))))
    async with _server(_Plain, SIZE) as (plain, want), _server(_Blocks, SIZE) as (ours, got):
        expected = await _session(plain, data, cuts)
        answered = await _session(ours, data, cuts)
    assert answered == expected
    assert got.mails == want.mails


_FILL = b"".join(b"line %04d\r\n" % n for n in range(SIZE // 11 - 1))  # just under SIZE
EDGES = {
    # an overlong line that also passes the size limit: too long (it overran the reader)
    # (the piece starts inside a short line, so the long one comes in a block of lines)
    "long and too much": (_FILL + b"y" * (3 * LINE) + b"\r\n.\r\n", [len(_FILL) - 4]),
    "too much, then long": (_FILL + b"z" * 40 + b"\r\n" + b"y" * 99 + b"\r\n.\r\n", []),
    # an overlong line's last byte a dot, its CRLF in the next piece: what the reader
    # holds after its overrun (".") ends as ".\r\n", the end of that line, not the data's
    "dot ends a long line": (b"y" * (3 * LINE - 1) + b".\r\n.\r\nQUIT\r\n", [3 * LINE]),
    "empty": (b".\r\nQUIT\r\n", []),
    "at the limits": (b"y" * (LINE - 2) + b"\r\n" + b"y" * (LINE - 1) + b"\r\n.\r\n", []),
}


@pytest.mark.parametrize("case", EDGES)
async def test_edges_as_aiosmtpd(case: str) -> None:
    data, cuts = EDGES[case]
    async with _server(_Plain, SIZE) as (plain, want), _server(_Blocks, SIZE) as (ours, got):
        expected = await _session(plain, data, cuts)
        answered = await _session(ours, data, cuts)
    assert answered == expected
    assert got.mails == want.mails


async def test_a_large_mail_in_many_segments() -> None:
    """A 300 KB mail (many reads of the socket, the reader paused and resumed between
    them): the same bytes as aiosmtpd's, the dots taken off."""
    lines = [b".line %d <td>cell</td>" % n if n % 7 == 0 else b"line %d" % n for n in range(20_000)]
    data = b"".join(line + b"\r\n" for line in lines) + b".\r\n"
    async with _server(_Plain, 0) as (plain, want), _server(_Blocks, 0) as (ours, got):
        expected = await _session(plain, data, [])
        answered = await _session(ours, data, [])
    assert answered == expected
    assert answered[-1].startswith("250")
    assert got.mails == want.mails
    assert got.mails[0].startswith(b"line 0 <td>cell</td>\r\nline 1\r\n")
