"""The mail data read in blocks of whole lines (`MailData`, `read_data`) gives what a loop
over single lines gives (aiosmtpd's, modelled line by line in `_per_line`), however the
bytes arrive: one by one, in random pieces, or all at once."""

from __future__ import annotations

import asyncio
import random

import pytest

from bridge.intake.maildata import DataState, MailData, read_data, whole_lines

LINE = 20  # the line limit in these tests (aiosmtpd's is 1001): long lines are cheap to make
SIZE = 200


def _per_line(stream: bytes, line_limit: int, size_limit: int) -> tuple[str, bytes, bytes]:
    """(state, content, what follows the lone dot), one line at a time as aiosmtpd 1.4.6's
    DATA loop: a line whose text passes the limit overruns the reader (too long); else its
    bytes are counted (too much past the size limit), then its length is checked; a leading
    dot comes off; nothing is kept after a fault."""
    state, size, kept, pos = "NOMINAL", 0, [], 0
    while True:
        end = stream.find(b"\r\n", pos)
        if end < 0:
            return "unended", b"", b""
        line, pos = stream[pos : end + 2], end + 2
        if line == b".\r\n":
            break
        if len(line) - 2 > line_limit:
            state = "TOO_LONG" if state == "NOMINAL" else state
        size += len(line)
        if state == "NOMINAL" and size > size_limit:
            state = "TOO_MUCH"
        if state == "NOMINAL" and len(line) > line_limit:
            state = "TOO_LONG"
        if state == "NOMINAL":
            kept.append(line[1:] if line.startswith(b".") else line)
    return state, b"".join(kept) if state == "NOMINAL" else b"", stream[pos:]


def _random_data(rng: random.Random) -> bytes:
    """A mail's data and its end, lines near the limits, dots where they matter, stray CR
    and LF, and something after the end (a pipelined QUIT)."""
    pieces = [b"", b".", b"..", b".x", b"x.", b"\r", b"\n", b"a", b"hello", b" ", b"\xc3\xa4"]
    lines = []
    for _ in range(rng.randrange(0, 14)):
        if rng.random() < 0.1:
            lines.append(b"y" * rng.choice((LINE - 3, LINE - 2, LINE - 1, LINE, LINE + 1, 60)))
        else:
            lines.append(b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 6))))
    body = b"".join(line + b"\r\n" for line in lines)
    return body + b".\r\n" + rng.choice((b"", b"QUIT\r\n", b"MAIL FROM:<a@b.example>\r\n"))


async def _read_in_pieces(stream: bytes, cuts: list[int]) -> tuple[MailData, bytes]:
    """`read_data` on a stream reader of limit LINE that gets `stream` cut at `cuts`, each
    piece after the reader has taken what it could of the one before."""
    reader = asyncio.StreamReader(limit=LINE)
    data = MailData(LINE, SIZE)
    task = asyncio.ensure_future(read_data(reader, data))
    last = 0
    for cut in [*cuts, len(stream)]:
        reader.feed_data(stream[last:cut])
        last = cut
        for _ in range(3):
            await asyncio.sleep(0)
    reader.feed_eof()
    await asyncio.wait_for(task, 5)
    rest = await reader.read()
    return data, rest


def _outcome(data: MailData) -> tuple[str, bytes]:
    if not data.ended:
        return "unended", b""
    return data.state.name, data.content()


@pytest.mark.parametrize("seed", range(300))
async def test_blocks_give_what_single_lines_give(seed: int) -> None:
    rng = random.Random(seed)
    stream = _random_data(rng)
    state, content, after = _per_line(stream, LINE, SIZE)
    splits = {
        "one piece": [],
        "byte by byte": list(range(1, len(stream))),
        "random pieces": sorted(rng.sample(range(1, len(stream)), min(len(stream) - 1, 4))),
    }
    for how, cuts in splits.items():
        data, rest = await _read_in_pieces(stream, cuts)
        assert _outcome(data) == (state, content), (how, stream)
        assert rest == after, (how, stream)  # nothing after the lone dot was taken


def test_dots_come_off_one_at_a_time() -> None:
    data = MailData(1001, None)
    assert data.feed(b".hidden\r\n..\r\nx\r\n...\r\n.\r\n")
    assert data.content() == b"hidden\r\n.\r\nx\r\n..\r\n"
    assert data.state is DataState.NOMINAL


def test_empty_data() -> None:
    data = MailData(1001, None)
    assert data.feed(b".\r\n")
    assert data.ended and data.content() == b""


def test_whole_lines_stops_at_the_end_or_the_last_line() -> None:
    assert whole_lines(b"a\r\nb\r\n.\r\nQUIT\r\n") == len(b"a\r\nb\r\n.\r\n")
    assert whole_lines(b".\r\nQUIT\r\n") == 3
    assert whole_lines(b"a\r\nb\r\n.") == len(b"a\r\nb\r\n")  # the dot may be a line's start
    assert whole_lines(b"a\r\nbc") == 3
    assert whole_lines(b"abc\r") == 0


def test_the_first_limit_passed_decides() -> None:
    too_much_first = MailData(LINE, 10)
    assert too_much_first.feed(b"123456789\r\n" + b"y" * LINE + b"\r\n.\r\n")
    assert too_much_first.state is DataState.TOO_MUCH
    too_long_first = MailData(LINE, 10)
    assert too_long_first.feed(b"y" * (LINE + 1) + b"\r\n.\r\n")  # overran: long, not much
    assert too_long_first.state is DataState.TOO_LONG
    assert too_long_first.content() == b""


def test_an_overrun_line_is_never_the_end() -> None:
    data = MailData(LINE, None)
    data.overrun(b"y" * (LINE + 5))
    assert not data.feed(b".\r\n")  # the end of the long line, not a lone dot
    assert data.feed(b".\r\n")
    assert data.state is DataState.TOO_LONG
