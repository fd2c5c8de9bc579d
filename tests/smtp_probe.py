"""A raw SMTP client for probes that well-behaved clients cannot send (smuggling, floods)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct

_TCPI_DATA_SEGS_IN = 152  # offset of tcpi_data_segs_in in Linux's struct tcp_info (4.6+)


class RawSmtp:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, host: str, port: int, *, local: str | None = None) -> RawSmtp:
        reader, writer = await asyncio.open_connection(
            host, port, local_addr=(local, 0) if local else None
        )
        client = cls(reader, writer)
        return client

    async def read_reply(self, timeout: float = 5.0) -> str:
        """One whole (possibly multi-line) reply; '' when the server closed."""
        lines: list[str] = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
            if not line:
                return "".join(lines)
            text = line.decode("utf-8", "replace")
            lines.append(text)
            if text[3:4] != "-":
                return "".join(lines)

    async def maybe_reply(self, timeout: float) -> str:
        """A reply if one comes within `timeout` seconds, else ''."""
        try:
            return await self.read_reply(timeout)
        except TimeoutError:
            return ""

    async def send(self, data: str | bytes) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    def data_segments_in(self) -> int:
        """TCP segments with data this client has received (Linux): how many sends the
        server's replies took, on loopback where nothing splits or merges them."""
        sock = self.writer.get_extra_info("socket")
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
        count: int = struct.unpack_from("I", info, _TCPI_DATA_SEGS_IN)[0]
        return count

    async def command(self, line: str, timeout: float = 5.0) -> str:
        await self.send(line + "\r\n")
        return await self.read_reply(timeout)

    async def starttls(self, context: ssl.SSLContext, server_hostname: str = "localhost") -> None:
        await self.writer.start_tls(context, server_hostname=server_hostname)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


async def transaction(
    host: str, port: int, mail: str, rcpt: str, data: bytes, *, ehlo: str = "client.example"
) -> str:
    """One mail as a client writes it, with the MAIL and RCPT lines as given (parameters
    such as SMTPUTF8, NOTIFY, ORCPT that well-behaved clients do not all send): EHLO,
    `mail`, `rcpt`, DATA and `data` (without the final dot); the reply to the mail's end.
    A MAIL or RCPT that is not answered 250 fails the test with its reply."""
    c = await RawSmtp.connect(host, port)
    try:
        await c.read_reply()
        await c.command(f"EHLO {ehlo}")
        reply = await c.command(mail)
        assert reply.startswith("250"), reply
        reply = await c.command(rcpt)
        assert reply.startswith("250"), reply
        reply = await c.command("DATA")
        assert reply.startswith("354"), reply
        await c.send(data + b".\r\n")
        return await c.read_reply()
    finally:
        await c.close()
