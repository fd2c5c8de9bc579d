"""A raw SMPP client for the SMPP server's tests: PDUs written byte by byte.

Not the bridge's codec, whose own assumptions would hide a client's faults. The reader
task answers deliver_sm (with an empty message id) and enquire_link itself, unless told
to stay silent (`answers = False`: a client whose network has gone), and hands every
other PDU to the request waiting for its sequence number.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field


def pdu(command_id: int, seq: int, body: bytes = b"", status: int = 0) -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, status, seq) + body


def tlv(tag: int, value: bytes) -> bytes:
    return struct.pack(">HH", tag, len(value)) + value


@dataclass
class Client:
    """A raw SMPP client: a reader task acknowledges deliver_sm (receipts) and enquire_link
    and hands every other PDU to the request waiting for its sequence number."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    seq: int = 100
    seen: list[tuple[int, int, int, bytes]] = field(default_factory=list)
    waiting: dict[int, asyncio.Future[tuple[int, int, bytes]]] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    answers: bool = True  # answer deliver_sm and enquire_link
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # the server closed

    def start(self) -> None:
        self.task = asyncio.create_task(self._read())

    async def close(self) -> None:
        self.writer.close()
        if self.task is not None:
            self.task.cancel()

    async def request(self, command_id: int, body: bytes) -> tuple[int, int, bytes] | None:
        """Send; (command_id, status, body) of the answer with our sequence, or None when
        none came within 5 s."""
        self.seq += 1
        answer = self.waiting[self.seq] = asyncio.get_running_loop().create_future()
        self.send(pdu(command_id, self.seq, body))
        try:
            return await asyncio.wait_for(answer, 5)
        except TimeoutError:
            return None

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def _read(self) -> None:
        try:
            while True:
                await self._one()
        except (asyncio.IncompleteReadError, ConnectionError):
            self.ended.set()

    async def _one(self) -> None:
        head = await self.reader.readexactly(16)
        length, command_id, status, seq = struct.unpack(">IIII", head)
        body = await self.reader.readexactly(length - 16)
        self.seen.append((command_id, status, seq, body))
        if command_id in (0x05, 0x15):  # deliver_sm (a receipt), enquire_link
            if self.answers:
                self.send(pdu(command_id | 0x80000000, seq, b"\0" if command_id == 5 else b""))
        elif (answer := self.waiting.pop(seq, None)) is not None:
            answer.set_result((command_id, status, body))
