"""An HTTP receiver with the bad habits of real ones, for the push worker's tests.

A raw asyncio TCP server on loopback, written byte by byte (not with an HTTP library, so
it can answer what no library would write): it reads each request whole, records the
path, and then answers the way the request's path names (`HABITS`): any status code,
`Retry-After`, a body of 10 MB, a body or a status line one byte at a time, broken
chunked encoding, HTTP/1.0 without a length, `100 Continue` first, only a 1xx, no answer,
a closed or reset connection, a line that is not HTTP, 1 MB of headers. Every answer
closes the connection (`Connection: close`) but those to `/keep…`, which keep it for the
next request: `/keep` answers 200 to each, `/keep-stale` 200 to a connection's first
request only and then reads the next and closes without a word (what a server whose
idle timeout ends a kept connection as a request arrives does), `/keep-503` 503,
`/keep-twice` two answers, 200 and 200, in one write (a server that answers one request
twice: the second is left over for the client's next request). With `tls`, HTTPS.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from tests.peers.net import HOST

DRIBBLE = 0.3  # seconds between the bytes of a slow answer


def _status(code: int, extra: str = "", body: bytes = b"") -> bytes:
    head = f"HTTP/1.1 {code} Answer\r\nContent-Length: {len(body)}\r\n{extra}Connection: close\r\n"
    return head.encode() + b"\r\n" + body


def _retry_date(seconds: int) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


@dataclass
class HttpReceiver:
    port: int = 0
    scheme: str = "http"
    requests: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    hosts: list[str] = field(default_factory=list)  # each request's Host header
    sni: list[str | None] = field(default_factory=list)  # each TLS connection's server name
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def open_connections(self) -> int:
        return len(self._tasks)

    def url(self, path: str, host: str = HOST) -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            for served in range(1_000):
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                fields = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
                await reader.readexactly(int(fields.get("content-length", "0")))
                self.requests[path] += 1
                self.hosts.append(fields.get("host", ""))
                if not path.startswith("/keep"):
                    await self.answer(path, writer)
                    break
                if path == "/keep-stale" and served:
                    break
                kept = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                if path == "/keep-503":
                    kept = b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"
                writer.write(kept * 2 if path == "/keep-twice" else kept)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:  # the receiver is stopping
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def answer(self, path: str, writer: asyncio.StreamWriter) -> None:
        name = path.lstrip("/")
        if name.isdigit():  # /404: that status, nothing else
            writer.write(_status(int(name)))
        elif name == "retry-after-seconds":
            writer.write(_status(429, "Retry-After: 600\r\n"))
        elif name == "retry-after-date":
            writer.write(_status(503, f"Retry-After: {_retry_date(3600)}\r\n"))
        elif name == "retry-after-junk":
            writer.write(_status(503, "Retry-After: soon\r\n"))
        elif name == "big-body":
            writer.write(_status(200, body=b"x" * 10_000_000))
        elif name == "slow-body":  # 200 at once, then a body that never ends
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
            for _ in range(1_000):
                await writer.drain()
                await asyncio.sleep(DRIBBLE)
                writer.write(b"x")
        elif name == "slow-status":  # a status line that never ends, a byte at a time
            for byte in b"HTTP/1.1 200 OK" * 100:
                await writer.drain()
                await asyncio.sleep(DRIBBLE)
                writer.write(bytes([byte]))
        elif name == "broken-chunks":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk")
        elif name == "http10":
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nthanks")
        elif name == "continue-then-200":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + _status(200))
        elif name == "only-1xx":
            writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n")
        elif name == "silent":
            await asyncio.sleep(3_600)
        elif name == "close":
            pass
        elif name == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif name == "not-http":
            writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
        elif name == "huge-headers":
            writer.write(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n")
        elif name == "odd-code":
            writer.write(b"HTTP/1.1 999 Whatever\r\nContent-Length: 0\r\n\r\n")
        else:
            writer.write(_status(200))
        await writer.drain()


@asynccontextmanager
async def http_receiver(tls: ssl.SSLContext | None = None) -> AsyncIterator[HttpReceiver]:
    receiver = HttpReceiver(scheme="https" if tls else "http")
    if tls is not None:  # the server name each handshake asked for
        tls.sni_callback = lambda sock, name, ctx: receiver.sni.append(name)
    server = await asyncio.start_server(receiver.serve, HOST, 0, ssl=tls)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        for task in list(receiver._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await server.wait_closed()
