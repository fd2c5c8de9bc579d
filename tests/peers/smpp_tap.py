"""A wire tap for SMPP: a TCP proxy on 127.0.0.1 that records the header of every PDU.

Put it between an ESME and an SMPP server to see what went over the wire whatever the
client library hides (smpp34 answers deliver_sm and enquire_link by itself and reports
a refused bind only as a timeout). It reads only the 16-octet headers (length, command
id, status, sequence) and forwards every octet unchanged; when either side closes, it
closes the other.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Final, Literal

COMMANDS: Final = {
    0x80000000: "generic_nack",
    0x00000001: "bind_receiver",
    0x80000001: "bind_receiver_resp",
    0x00000002: "bind_transmitter",
    0x80000002: "bind_transmitter_resp",
    0x00000003: "query_sm",
    0x80000003: "query_sm_resp",
    0x00000004: "submit_sm",
    0x80000004: "submit_sm_resp",
    0x00000005: "deliver_sm",
    0x80000005: "deliver_sm_resp",
    0x00000006: "unbind",
    0x80000006: "unbind_resp",
    0x00000007: "replace_sm",
    0x80000007: "replace_sm_resp",
    0x00000008: "cancel_sm",
    0x80000008: "cancel_sm_resp",
    0x00000009: "bind_transceiver",
    0x80000009: "bind_transceiver_resp",
    0x00000015: "enquire_link",
    0x80000015: "enquire_link_resp",
    0x00000102: "alert_notification",
    0x00000103: "data_sm",
    0x80000103: "data_sm_resp",
}

Direction = Literal["to_server", "to_client"]


@dataclass(frozen=True, slots=True)
class TappedPdu:
    """One PDU as it passed: which way, on which connection, and its header."""

    connection: int
    direction: Direction
    command: str
    status: int
    sequence: int
    length: int


@dataclass(eq=False)
class SmppTap:
    """The proxy; `port` is where clients connect, `pdus` what passed (oldest first)."""

    upstream_host: str
    upstream_port: int
    port: int = 0
    pdus: list[TappedPdu] = field(default_factory=list)
    connections: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close the listener and every connection (the pumps then end by themselves)."""
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def seen(self, command: str, direction: Direction | None = None) -> list[TappedPdu]:
        return [
            p
            for p in self.pdus
            if p.command == command and (direction is None or p.direction == direction)
        ]

    async def wait_until(self, predicate: Callable[[], object], within: float = 10.0) -> None:
        async def _wait() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(_wait(), within)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        number = self.connections
        self._writers.append(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        self._writers.append(up_writer)
        try:
            await asyncio.gather(
                self._pump(number, "to_server", reader, up_writer),
                self._pump(number, "to_client", up_reader, writer),
            )
        finally:
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()
            self._tasks.discard(task)

    async def _pump(
        self,
        number: int,
        direction: Direction,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        try:
            while True:
                header = await reader.readexactly(16)
                length = int.from_bytes(header[0:4], "big")
                body = await reader.readexactly(max(0, length - 16))
                command_id = int.from_bytes(header[4:8], "big")
                self.pdus.append(
                    TappedPdu(
                        number,
                        direction,
                        COMMANDS.get(command_id, f"0x{command_id:08x}"),
                        int.from_bytes(header[8:12], "big"),
                        int.from_bytes(header[12:16], "big"),
                        length,
                    )
                )
                self._changed.set()
                writer.write(header + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()  # one side gone: the other goes too, as a direct connection would
            self._changed.set()


@contextlib.asynccontextmanager
async def tapped(host: str, port: int) -> AsyncIterator[SmppTap]:
    tap = SmppTap(host, port)
    await tap.start()
    try:
        yield tap
    finally:
        await tap.stop()
