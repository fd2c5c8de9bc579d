"""One SMPP connection over asyncio streams: framing, sequence numbers, window, dispatch.

Used by both sides (our ESME and the sandbox SMSC). Outgoing requests take a window
slot (`asyncio.Semaphore`) and wait for the response with the same sequence number; a
response timeout drops the connection, because the outcome of the request is unknown
and resending blindly would duplicate SMS. Incoming enquire_link is answered here;
alert_notification is logged and never answered (SMPP 3.4 defines no response to it,
and a peer may count any answer as a protocol error). Every other incoming request is
handed to the `handler` in its own task (so a slow inbox never blocks submit
responses), and the handler's answer is written back. An exception in the handler is
logged and answered with ESME_RX_T_APPN; it never ends the session.

An incoming unbind ends the session in order: no new request is taken (a later one is
answered ESME_RINVBNDSTS, and `request` raises NotSent), the requests being handled get
their answers (for at most `UNBIND_DRAIN` seconds: a deliver_sm whose MO was stored, a
submit_sm whose order was committed), then unbind_resp, then the connection closes. A
peer told its stored message was not answered would send it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Final

from bridge.errors import TemporaryFailure
from bridge.smpp import constants as c
from bridge.smpp.pdu import (
    HEADER_SIZE,
    AlertNotification,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    PduError,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    decode_body,
    decode_header,
    encode,
    is_response,
)

RequestHandler = Callable[[Pdu], Awaitable[Pdu | None]]

log: Final = logging.getLogger(__name__)
UNBIND_WAIT: Final = 2.0  # seconds a side that closes waits for the peer's unbind_resp
# Seconds the requests being handled when the peer unbinds may take to be answered, before
# its unbind_resp goes out (within the UNBIND_WAIT a peer like us waits for it).
UNBIND_DRAIN: Final = 1.5
# seconds a connection this side ends (`end`) stays open for the peer to read our last PDU
LINGER: Final = 2.0


class SessionError(TemporaryFailure):
    """Base of the errors a session raises from `request`."""


class ConnectionLost(SessionError):
    """The connection closed before the response arrived (outcome unknown)."""


class NotSent(ConnectionLost):
    """The connection was already closed; the request never left (outcome known: not sent)."""


class NoTimeLeft(NotSent):
    """The request would have gone after its send-by time (it waited for a window slot,
    a token, or was held up otherwise); it never left."""


class ResponseTimeout(SessionError):
    """No response in time; the connection has been dropped (outcome unknown)."""


def error_response(pdu: Pdu, status: int) -> Pdu:
    """The response to `pdu` that carries `status` (generic_nack for unmodelled requests)."""
    if isinstance(pdu, DeliverSm):
        return DeliverSmResp(pdu.sequence, status)
    if isinstance(pdu, SubmitSm):
        return SubmitSmResp(pdu.sequence, status)
    if isinstance(pdu, DataSm):
        return DataSmResp(pdu.sequence, status)
    return GenericNack(pdu.sequence, status)


class SmppSession:
    """A framed SMPP connection; call `run()` (the read loop) in a task."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handler: RequestHandler,
        *,
        window: int = 10,
        response_timeout: float = 30.0,
        name: str = "smpp",
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._on_close = on_close
        self._reader = reader
        self._writer = writer
        self._handler = handler
        self._window = asyncio.Semaphore(window)
        self._response_timeout = response_timeout
        self._pending: dict[int, asyncio.Future[Pdu]] = {}
        self._due: dict[int, float] = {}  # seq -> when its response is due (loop time)
        self._timer: asyncio.TimerHandle | None = None  # at the earliest of `_due`
        self._timer_at = 0.0
        self._next_seq = 1
        self._tasks: set[asyncio.Task[None]] = set()
        self._unbinding: asyncio.Task[None] | None = None  # answering the peer's unbind
        self._closed = asyncio.Event()
        self.close_reason = ""
        self.answered = 0  # responses that came to our requests (the bind's among them)
        self.last_read = asyncio.get_running_loop().time()  # when the peer last sent a PDU
        # PDUs written in one turn of the event loop leave in one write (one send(2)):
        # a batch of submits, the responses to a batch of receipts.
        self._out: list[bytes] = []
        self._lingering = False  # ended by `end`: our side closed, the peer's input dropped

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def set_window(self, window: int) -> None:
        """How many requests may wait for their responses at once, set before this side's
        first request (an SMSC learns it from the account that binds)."""
        self._window = asyncio.Semaphore(window)

    def next_sequence(self) -> int:
        seq = self._next_seq
        self._next_seq = seq + 1 if seq < 0x7FFFFFFF else 1
        return seq

    # --- outgoing ---------------------------------------------------------------------------

    async def request(
        self,
        pdu: Pdu,
        *,
        response_timeout: float | None = None,
        use_window: bool = True,
        send_by: float | None = None,
    ) -> Pdu:
        """Send a request and return its response PDU (which may carry an error status).

        Raises ConnectionLost or ResponseTimeout; on timeout the connection is dropped.
        A request that has no window slot by `send_by` (loop time) is not sent: NoTimeLeft.
        Nor is one that reaches its write after `send_by`, whatever held it up on the way (a
        rate's token, a slot that came just as the time ran out, a process that was frozen
        and woke with its timers all due): its order's claim may be another's by then.
        """
        if use_window:
            # a free slot is taken at once: the send-by time (a timer) only for a full window
            if send_by is None or not self._window.locked():
                await self._window.acquire()
            else:
                try:
                    async with asyncio.timeout_at(send_by):
                        await self._window.acquire()
                except TimeoutError:
                    raise NoTimeLeft(
                        f"{self.name}: the window stayed full until the send-by time"
                    ) from None
        try:
            if self._closed.is_set():
                raise NotSent(f"{self.name}: connection closed ({self.close_reason})")
            if self._unbinding is not None:
                raise NotSent(f"{self.name}: the peer is unbinding")
            loop = asyncio.get_running_loop()
            if send_by is not None and loop.time() > send_by:
                late = loop.time() - send_by
                raise NoTimeLeft(f"{self.name}: {late:.1f} s past the send-by time, not sent")
            seq = self.next_sequence()
            fut: asyncio.Future[Pdu] = loop.create_future()
            self._pending[seq] = fut
            try:
                self._write(encode(pdu, seq))
                await self._writer.drain()
                wait = self._response_timeout if response_timeout is None else response_timeout
                due = loop.time() + wait
                self._due[seq] = due
                if self._timer is None or due < self._timer_at:
                    self._arm(loop, due)
                return await fut
            except TimeoutError:
                self.abort(f"no response to seq {seq} in time")
                raise ResponseTimeout(
                    f"{self.name}: no response to 0x{pdu.command_id:08X} seq {seq}"
                ) from None
            except (ConnectionError, OSError) as exc:
                self.abort(f"write failed: {exc}")
                raise ConnectionLost(f"{self.name}: {exc}") from exc
            finally:
                self._due.pop(seq, None)
                self._pending.pop(seq, None)
        finally:
            if use_window:
                self._window.release()

    # Response timeouts: one timer per session, at the earliest deadline of the requests
    # waiting (not one per request, which a window of answers would create and cancel by
    # the thousand). When it fires, every request past its deadline gets TimeoutError,
    # and it is set again for the next deadline.

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(when, self._expire_due)
        self._timer_at = when

    def _expire_due(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        following = math.inf
        for seq, due in self._due.items():
            if due <= now:
                fut = self._pending.get(seq)
                if fut is not None and not fut.done():
                    fut.set_exception(TimeoutError())
            elif due < following:
                following = due
        if following < math.inf and not self._closed.is_set():
            self._arm(loop, following)

    def send(self, pdu: Pdu) -> None:
        """Write a PDU (a response, or a request whose answer we do not wait for)."""
        if self._closed.is_set():
            return
        self._write(encode(pdu))

    def _write(self, data: bytes) -> None:
        """Queue `data` for the write at the end of this turn of the event loop."""
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        if not self._out:
            return
        data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        try:
            self._writer.write(data)
        except (ConnectionError, OSError, RuntimeError) as exc:
            self.abort(f"write failed: {exc}")

    # --- incoming ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Read and dispatch PDUs until the connection ends; then fail what is pending."""
        reader = self._reader
        clock = asyncio.get_running_loop().time
        try:
            while not self._closed.is_set():
                header = await reader.readexactly(HEADER_SIZE)
                length, command_id, status, seq = decode_header(header)
                body = await reader.readexactly(length - HEADER_SIZE) if length > 16 else b""
                if self._closed.is_set():
                    break  # ended while it came: not handled
                self.last_read = clock()
                self._dispatch(command_id, status, seq, body)
            if self._lingering:
                await self._drop_input()
        except asyncio.IncompleteReadError:
            self._finish("peer closed the connection")
        except PduError as exc:  # bad framing: we cannot find the next PDU, so give up
            self.send(GenericNack(0, exc.status))
            self.end(f"bad framing: {exc}")
            await self._drop_input()
        except (ConnectionError, OSError) as exc:
            self._finish(f"connection error: {exc}")
        except asyncio.CancelledError:
            self._finish("cancelled")
            raise
        finally:
            self._finish("read loop ended")

    async def _drop_input(self) -> None:
        """After `end`: what the peer still sends, read and dropped until its end or ours
        (unread, it would make the kernel reset the connection)."""
        with contextlib.suppress(ConnectionError, OSError):
            while await self._reader.read(65536):
                pass

    def _dispatch(self, command_id: int, status: int, seq: int, body: bytes) -> None:
        try:
            pdu = decode_body(command_id, status, seq, body)
        except PduError as exc:
            log.warning("%s: undecodable PDU 0x%08X seq %d: %s", self.name, command_id, seq, exc)
            if is_response(command_id):
                fut = self._pending.get(seq)
                if fut is not None and not fut.done():
                    fut.set_result(GenericNack(seq, exc.status))
            elif command_id != c.ALERT_NOTIFICATION:  # it has no response, not even a nack
                self.send(GenericNack(seq, exc.status))
            return
        if command_id & c.RESP_BIT:
            fut = self._pending.get(seq)
            if fut is not None and not fut.done():
                self.answered += 1
                fut.set_result(pdu)
            elif isinstance(pdu, GenericNack) and seq == 0:
                log.warning("%s: generic_nack without sequence, status 0x%02X", self.name, status)
            else:
                log.debug("%s: response to unknown seq %d (late?)", self.name, seq)
            return
        if isinstance(pdu, EnquireLink):
            self.send(EnquireLinkResp(seq))
        elif isinstance(pdu, Unbind):
            if self._unbinding is None:
                self._unbinding = asyncio.create_task(self._answer_unbind(seq))
        elif isinstance(pdu, AlertNotification):
            log.info(
                "%s: alert_notification: %s is reachable again (for %s)",
                self.name,
                pdu.source_addr,
                pdu.esme_addr,
            )
        elif self._unbinding is not None:  # after its unbind the peer may send no request
            self.send(error_response(pdu, c.ESME_RINVBNDSTS))
        else:
            task = asyncio.create_task(self._handle(pdu))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer_unbind(self, seq: int) -> None:
        """The answers to the requests being handled, then unbind_resp, then the close."""
        await self.drain(UNBIND_DRAIN)
        self.send(UnbindResp(seq))
        self.abort("peer unbound")

    async def _handle(self, pdu: Pdu) -> None:
        try:
            response = await self._handler(pdu)
        except Exception:
            log.exception("%s: handler failed for 0x%08X", self.name, pdu.command_id)
            response = error_response(pdu, c.ESME_RX_T_APPN)
        if response is not None:
            self.send(response)

    # --- closing ----------------------------------------------------------------------------

    async def drain(self, within: float) -> None:
        """Wait, at most `within` seconds, until the requests being handled have been
        answered (e.g. each submit_sm after its commit)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=within)

    async def unbind(self, wait: float = UNBIND_WAIT) -> None:
        """Tell the peer this side is closing (`unbind`) and wait at most `wait` seconds
        for its unbind_resp; a peer that has gone or does not answer is no fault here.
        The caller closes the connection after it."""
        if self.closed:
            return
        with contextlib.suppress(SessionError, OSError):
            await self.request(Unbind(0), response_timeout=wait, use_window=False)

    def abort(self, reason: str) -> None:
        """Drop the connection now; pending requests fail with ConnectionLost."""
        self._finish(reason)

    def end(self, reason: str) -> None:
        """End the session after what was written, so that the peer reads it (a refused
        bind's bind_resp, a generic_nack for bad framing): our side of the stream ends
        (FIN), what the peer still sends is read and dropped (`run`), and the connection
        closes when the peer closes or after `LINGER` seconds. `abort` closes at once:
        with the peer's input unread the kernel resets the connection, and the peer got
        `connection reset` instead of the answer that said why (a TCP that drops unread
        data on a reset, Windows', loses that answer). Over TLS: at once."""
        if self._closed.is_set():
            return
        transport = self._writer.transport
        if (
            isinstance(transport, asyncio.WriteTransport)
            and transport.can_write_eof()
            and self._writer.get_extra_info("sslcontext") is None
        ):
            self._lingering = True
        self._finish(reason)

    def _finish(self, reason: str) -> None:
        if self._closed.is_set():
            return
        self.close_reason = reason
        self._closed.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with contextlib.suppress(Exception):
            self._flush()  # what was written before the close leaves before it (unbind_resp)
        if self._on_close is not None:
            self._on_close()
        for seq, fut in list(self._pending.items()):
            if not fut.done():
                fut.set_exception(ConnectionLost(f"{self.name}: {reason} (seq {seq})"))
        with contextlib.suppress(Exception):
            if self._lingering:
                self._writer.write_eof()
                asyncio.get_running_loop().call_later(LINGER, self._writer.close)
            else:
                self._writer.close()

    async def close(self) -> None:
        """Close the connection; cancel the handler tasks and wait for them to end (call
        `drain` first to give them their answers)."""
        self._finish("closed by us")
        tasks: set[asyncio.Task[None]] = set(self._tasks)
        if self._unbinding is not None:
            tasks.add(self._unbinding)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
