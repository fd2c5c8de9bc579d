"""An independent SMSC for integration tests: `smpp34.Server` on 127.0.0.1, plus a recording Inbox.

smpp34's Server has no way to report the port it bound, so we pick a free port by binding
a socket to port 0 and closing it, then hand that port to the Server (a tiny race with
other processes on the machine is accepted). The peer accepts every submit_sm with a
numeric id, or rejects it with the status configured for its destination, and sends a
delivery receipt (esm_class 0x04 + receipted_message_id/message_state TLVs + the standard
text) when registered_delivery asks for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import smpp34

from bridge.transports.base import InboxUnavailable
from bridge.transports.smpp import SmppConfig, SmppTransport
from bridge.values import InboundSms, Receipt
from tests.peers.net import free_port


class _Notifier:
    """Wake waiters whenever something was recorded; `wait_until` re-checks a predicate."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def notify(self) -> None:
        self._changed.set()

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        async def _wait() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(_wait(), within)


@dataclass(eq=False)
class RecordingInbox:
    """Our own side of the Inbox protocol, in memory; `fail_next` makes calls raise."""

    messages: list[InboundSms] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    known_ids: set[str] = field(default_factory=set)  # ids of "sent parts" (text receipts)
    fail_next: int = 0
    failures: int = 0
    _notifier: _Notifier = field(default_factory=_Notifier)

    def _maybe_fail(self) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            self.failures += 1
            self._notifier.notify()
            raise InboxUnavailable("database is down (test)")

    async def on_message(self, sms: InboundSms) -> None:
        self._maybe_fail()
        self.messages.append(sms)
        self._notifier.notify()

    async def on_receipt(self, receipt: Receipt) -> None:
        self._maybe_fail()
        self.receipts.append(receipt)
        self._notifier.notify()

    async def on_text_receipt(self, receipt: Receipt, sms: InboundSms) -> bool:
        self._maybe_fail()
        known = receipt.message_id in self.known_ids
        if known:
            self.receipts.append(receipt)
        else:
            self.messages.append(sms)
        self._notifier.notify()
        return known

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        await self._notifier.wait_until(predicate, within)


class Smpp34Peer:
    """smpp34.Server driven by a background task."""

    def __init__(self, *, receipts: bool = True) -> None:
        self.port = free_port()
        self.server = smpp34.Server("127.0.0.1", self.port, system_id="smpp34")
        self.receipts = receipts
        self.reject: dict[str, int] = {}  # destination_addr -> command_status
        self.submits: list[Any] = []
        self.esmes: dict[str, Any] = {}
        self.receipt_results: list[int] = []
        self._ids = itertools.count(2001)
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._notifier = _Notifier()

    async def start(self) -> None:
        await self.server.start()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        for task in [self._task, *self._tasks]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self.server.stop()

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        await self._notifier.wait_until(predicate, within)

    async def _loop(self) -> None:
        while True:
            ev = await self.server.next()
            if isinstance(ev, smpp34.Esme):
                self.esmes[ev.session_id] = ev
            elif isinstance(ev, smpp34.SubmitSmEvent):
                self._on_submit(ev)
            elif isinstance(ev, smpp34.Unbound):
                self.esmes.pop(ev.session_id, None)
            self._notifier.notify()

    def _on_submit(self, ev: Any) -> None:
        self.submits.append(ev)
        status = self.reject.get(ev.destination_addr)
        if status is not None:
            ev.reject(status)
            return
        message_id = str(next(self._ids))
        ev.accept(message_id)
        esme = self.esmes.get(ev.session_id)
        if self.receipts and ev.registered_delivery & 1 and esme is not None:
            task = asyncio.create_task(self._receipt(esme, ev, message_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _receipt(self, esme: Any, ev: Any, message_id: str) -> None:
        text = (
            f"id:{message_id} sub:001 dlvrd:001 submit date:2611051200 "
            f"done date:2611051201 stat:DELIVRD err:000 text:"
        ).encode()
        resp = await esme.deliver_sm(
            ev.source_addr,
            text,
            source_addr=ev.destination_addr,
            source_addr_ton=1,
            source_addr_npi=1,
            esm_class=0x04,
            tlvs=[
                smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, message_id.encode() + b"\0"),  # type: ignore[attr-defined]
                smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, b"\x02"),  # type: ignore[attr-defined]
            ],
        )
        self.receipt_results.append(resp.command_status)
        self._notifier.notify()


@contextlib.asynccontextmanager
async def running_smpp34_peer(*, receipts: bool = True) -> AsyncIterator[Smpp34Peer]:
    peer = Smpp34Peer(receipts=receipts)
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()


@contextlib.asynccontextmanager
async def bound_transport(
    config: SmppConfig, within: float = 10.0
) -> AsyncIterator[tuple[SmppTransport, RecordingInbox]]:
    """Our ESME bound with `config` (failing with its last error if it does not bind
    within `within` seconds), recording what it receives; stopped at the end."""
    transport = SmppTransport(config)
    inbox = RecordingInbox()
    await transport.start(inbox)
    try:
        assert await transport.wait_bound(within), transport.last_error
        yield transport, inbox
    finally:
        await transport.stop()
