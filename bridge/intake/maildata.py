"""The mail data of one DATA command (RFC 5321 4.5.2), taken in blocks of whole lines.

aiosmtpd reads the data one line at a time: an await, a log call, a copy and some checks
for every line, ~3 µs a line on this project's machines. A short mail from Outlook is
~48 KB in ~670 lines (the HTML part's style sheet), so its DATA alone cost a server that
only answers 250 ~2.9 ms, against ~0.9 ms read in blocks (bench/data_bench.py).
`MailData` takes every whole line that has arrived at once and gives the same result as
aiosmtpd's loop (release `AIOSMTPD_KNOWN`): the same end (the first line that is a lone
dot), the same dot-unstuffing (one leading dot off every line), the same refusals (a line
longer than the line limit: 500; more bytes than the size limit: 552; the first of the two
in line order wins, and the rest of the data is read and dropped). `MailData` is pure;
`read_data` feeds it from the session's stream reader.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable

END = b"\r\n.\r\n"  # a line that is a lone dot, after the CRLF of the line before it


class DataState(enum.Enum):
    NOMINAL = enum.auto()
    TOO_LONG = enum.auto()  # a line longer than the line limit: 500
    TOO_MUCH = enum.auto()  # more data than the size limit: 552


def whole_lines(buffer: bytes | bytearray) -> int:
    """How many bytes at the start of `buffer` (which starts at a line's start) to take:
    through the lone-dot line when it is there, else through the last CRLF (0: no whole
    line yet)."""
    if buffer[:3] == b".\r\n":
        return 3
    end = buffer.find(END)
    if end >= 0:
        return end + len(END)
    last = buffer.rfind(b"\r\n")
    return last + 2 if last >= 0 else 0


class MailData:
    """Collects one mail's data: `feed` whole lines (or the end of an overlong line after
    `overrun`) until it says the data ended; then `content` or `state`."""

    def __init__(self, line_limit: int, size_limit: int | None) -> None:
        # the longest line, its CRLF included; also the reader's limit (aiosmtpd reads
        # with a StreamReader of `line_length_limit`, and one line past it overruns that)
        self.line_limit = line_limit
        self.size_limit = size_limit or 0  # 0: none
        self.state = DataState.NOMINAL
        self.size = 0  # bytes of data so far (CRLFs included, the lone dot not)
        self.parts: list[bytes] = []  # unstuffed, while NOMINAL
        self.in_line = False  # inside an overlong line (`overrun`) until its CRLF
        self.ended = False  # the lone-dot line came

    def overrun(self, fragment: bytes) -> None:
        """A piece of a line longer than the reader's limit (no CRLF in it): the line is
        too long, whatever follows."""
        self.size += len(fragment)
        self._fail(DataState.TOO_LONG)
        self.in_line = True

    def feed(self, block: bytes) -> bool:
        """Take `block`: whole lines starting at a line's start (`whole_lines`), or the
        rest of an overlong line through its CRLF. True: the lone-dot line ended the data
        (it is the block's last line)."""
        if self.in_line:  # the end of an overlong line: never the lone dot
            self.in_line = False
            self.size += len(block)
            return False
        if block == b".\r\n":
            self.ended = True
            return True
        ended = self.ended = block.endswith(END)
        body = block[:-3] if ended else block
        self.size += len(body)
        if self.state is DataState.NOMINAL:
            if (self.size_limit and self.size > self.size_limit) or (
                max(map(len, body.split(b"\r\n"))) + 2 > self.line_limit
            ):
                self._first_fault(body)
            else:
                if body[:1] == b".":
                    body = body[1:]
                self.parts.append(body.replace(b"\r\n.", b"\r\n"))
        return ended

    def content(self) -> bytes:
        """The data, unstuffed (empty unless NOMINAL)."""
        return b"".join(self.parts)

    def _first_fault(self, body: bytes) -> None:
        """Which limit `body`'s lines passed first, line by line as aiosmtpd checks: a line
        whose text alone is longer than the limit overran its reader (too long, before the
        size is counted); then the size; then the line with its CRLF."""
        size = self.size - len(body)
        for line in body.split(b"\r\n")[:-1]:
            if len(line) > self.line_limit:
                self._fail(DataState.TOO_LONG)
                return
            size += len(line) + 2
            if self.size_limit and size > self.size_limit:
                self._fail(DataState.TOO_MUCH)
                return
            if len(line) + 2 > self.line_limit:
                self._fail(DataState.TOO_LONG)
                return

    def _fail(self, state: DataState) -> None:
        if self.state is DataState.NOMINAL:
            self.state = state
            self.parts.clear()  # nothing of it is kept


async def read_data(
    reader: asyncio.StreamReader, data: MailData, progress: Callable[[], object] = lambda: None
) -> None:
    """Feed `data` from `reader` up to the lone-dot line, nothing after it (a pipelined QUIT
    stays for the command loop): a line awaited, then whatever whole lines the reader holds
    already (`whole_lines`; its buffer peeked at), taken with one read. `progress` is
    called after each line awaited (the session's timeout counts from the last whole line).
    Returns early, `data.ended` false, at the end of the stream."""
    while True:
        try:
            line = await reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError as error:  # a line longer than the reader's limit
            data.overrun(await reader.read(error.consumed))
            continue
        except asyncio.IncompleteReadError:  # the stream ended
            return
        progress()
        if data.feed(line):
            return
        buffer = getattr(reader, "_buffer", None)
        take = whole_lines(buffer) if buffer else 0
        if take and data.feed(await reader.read(take)):
            return
