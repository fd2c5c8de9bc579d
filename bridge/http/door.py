"""The HTTP door: uvicorn's h11 protocol with a deadline for a request to arrive and
connection caps, the limits the SMTP and SMPP doors have.

uvicorn closes an idle keep-alive connection, but its timer restarts with every byte
received and nothing bounds how long a request may take to arrive, so a client that
trickles a request (Slowloris) holds a connection, and a file descriptor the other doors
of the same process need, for as long as it likes. Here a request must arrive whole —
request line, headers and body — within `[http] request_timeout` of the connection's
start or of the previous answer; else the connection is closed (with `408` when no
request had begun). Connections are capped per client address and in total at accept,
as the SMTP listener does (`ConnectionLimiter`). Lines a client can cause are written at
a bounded rate (`LogLimiter`).
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.h11_impl import H11Protocol

from bridge.http.settings import HttpSettings
from bridge.intake.access import ConnectionLimiter
from bridge.intake.lograte import LogLimiter

log = logging.getLogger("bridge.http")

_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


def door_protocol(settings: HttpSettings) -> type[H11Protocol]:
    """The protocol class of one listener (its limits shared by its connections)."""
    limiter = ConnectionLimiter(
        settings.max_connections_per_ip,
        settings.max_connections_per_ip_per_minute,
        settings.max_connections,
    )
    logs = LogLimiter(log)
    timeout = settings.request_timeout

    class DoorProtocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _admitted = False
        _ip = ""

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
            super().data_received(data)
            if self._deadline is not None and not self._arriving():
                self._disarm()

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
