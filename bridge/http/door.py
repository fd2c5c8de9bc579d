"""The HTTP door: uvicorn's httptools protocol (the llhttp parser, in C) with a deadline
for a request to arrive, a bound on a request's head and connection caps, the limits the
SMTP and SMPP doors have.

uvicorn closes an idle keep-alive connection, but its timer restarts with every byte
received and nothing bounds how long a request may take to arrive, so a client that
trickles a request (Slowloris) holds a connection, and a file descriptor the other doors
of the same process need, for as long as it likes. Here a request must arrive whole —
request line, headers and body — within `[http] request_timeout` of the connection's
start or of the previous answer; else the connection is closed (with `408` when no
request had begun). Connections are capped per client address and in total at accept,
as the SMTP listener does (`ConnectionLimiter`). Lines a client can cause are written at
a bounded rate (`LogLimiter`).

A request's head (request line and headers) may take at most `HEAD_LIMIT` bytes, else
the connection is closed with `431`: the parser keeps a head whole until it ends and
bounds nothing itself, so a client could make the process hold as much as it can send
within `request_timeout`. (uvicorn's h11 protocol, used before, bounded what it buffered
but cost ~30 % more CPU per status read of the REST API, bench/README.md.) The bytes
that arrive while a head is awaited are counted, read by read, until its headers are
complete; a read that ends one request's body and begins the next one's head is not
counted, so the memory a head can take is bounded by the limit and one read.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bridge.http.settings import HttpSettings
from bridge.intake.access import ConnectionLimiter
from bridge.intake.lograte import LogLimiter

log = logging.getLogger("bridge.http")

_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
    b"Content-Length: 0\r\n\r\n"
)
HEAD_LIMIT = 64 * 1024  # bytes of a request line and its headers (nginx: 32 KiB, h11: 16)


def door_protocol(settings: HttpSettings) -> type[HttpToolsProtocol]:
    """The protocol class of one listener (its limits shared by its connections)."""
    limiter = ConnectionLimiter(
        settings.max_connections_per_ip,
        settings.max_connections_per_ip_per_minute,
        settings.max_connections,
    )
    logs = LogLimiter(log)
    timeout = settings.request_timeout

    class DoorProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _admitted = False
        _ip = ""
        _in_head = True  # a request's head is awaited (none begun, or not yet whole)
        _head = 0  # bytes received since

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._ip = str(self.client[0]) if self.client else ""
            refused = limiter.admit(self._ip)
            if refused is not None:
                logs.event(
                    logging.WARNING,
                    "refused",
                    self._ip,
                    "HTTP connection from %s refused: %s",
                    self._ip,
                    refused,
                )
                transport.close()
                return
            self._admitted = True
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._admitted:
                self._admitted = False
                limiter.release(self._ip)
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._in_head:
                self._head += len(data)
            super().data_received(data)  # parsed: the request callbacks below run
            if self._in_head and self._head > HEAD_LIMIT and not self.transport.is_closing():
                self._refuse_head()
                return
            if self._deadline is not None and not self._arriving():
                self._disarm()

        def on_headers_complete(self) -> None:
            self._in_head, self._head = False, 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head, self._head = True, 0  # the next head: what arrives from now counts

        def on_response_complete(self) -> None:
            super().on_response_complete()  # may start a pipelined request's cycle
            if self.transport.is_closing():
                return
            if self._arriving():
                self._arm()  # the next request has its own time
            else:
                self._disarm()

        def _arriving(self) -> bool:
            """Is a request still on its way (none begun since the last answer, or its
            body not whole)?"""
            cycle = self.cycle
            return cycle is None or cycle.response_complete or cycle.more_body

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(timeout, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _refuse_head(self) -> None:
            logs.event(
                logging.INFO,
                "head_too_large",
                self._ip,
                "HTTP connection from %s closed: a request's head (request line and "
                "headers) over %d bytes",
                self._ip,
                HEAD_LIMIT,
            )
            cycle = self.cycle
            if cycle is None or cycle.response_complete:  # no answer being written
                self.transport.write(_HEAD_TOO_LARGE)
            self.transport.close()

        def _expired(self) -> None:
            self._deadline = None
            if self.transport.is_closing() or not self._arriving():
                return
            cycle = self.cycle
            begun = cycle is not None and not cycle.response_complete
            logs.event(
                logging.INFO,
                "request_timeout",
                self._ip,
                "HTTP connection from %s closed: %s did not arrive whole within "
                "request_timeout = %g s",
                self._ip,
                "a request's body" if begun else "a request",
                timeout,
            )
            if not begun:
                self.transport.write(_TIMED_OUT)
            self.transport.close()

    return DoorProtocol
