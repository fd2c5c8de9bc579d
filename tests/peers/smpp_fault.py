"""A misbehaving SMSC built on our codec: throttling, silence, generic_nack, odd receipts, drops,
and the message ids real SMSCs give: a counter that restarts, "", one id for every part.

Each behaviour is a counter or flag on `FaultSmsc`; the peer records every submit_sm
(with the time it arrived) and can push deliver_sm (MO parts, receipts) to the bound
ESME. A receipt's `text:` carries the first 20 characters of its message, as SMPP 3.4
Appendix B describes, so a test can tell which message a receipt was about. Binds on
127.0.0.1, port 0; any system_id/password is accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

from bridge.smpp import constants as c
from bridge.smpp.pdu import (
    AlertNotification,
    Bind,
    BindResp,
    DeliverSm,
    DeliverSmResp,
    GenericNack,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Tlv,
)
from bridge.smpp.session import SessionError, SmppSession


@dataclass
class Faults:
    throttle: int = 0  # answer ESME_RTHROTTLED to the next N submits
    throttle_after: int = 0  # ... once this many submits were accepted (a part mid-message)
    silent: int = 0  # never answer the next N submits
    silent_after: int = 0  # ... once this many submits were accepted (a part mid-message)
    nack: int = 0  # answer generic_nack (status nack_status) to the next N submits
    nack_status: int = c.ESME_RSYSERR
    drop_after: int = 0  # hold submits unanswered; drop the connection when N are held
    receipt_first: bool = False  # send the receipt before the submit_sm_resp
    wrong_receipts: bool = False  # also send receipts for unknown ids, garbage, regressions
    hold_receipts: bool = False  # keep receipts until `release_receipts`
    receipts: bool = True
    final_receipts: bool = True  # False: only ACCEPTD receipts, never a final one
    empty_ids: bool = False  # answer every submit_sm with message_id ""
    one_id_per_message: bool = False  # every part of a concatenated SMS gets the same id


@dataclass(eq=False)
class FaultSmsc:
    faults: Faults = field(default_factory=Faults)
    submits: list[SubmitSm] = field(default_factory=list)
    submit_times: list[float] = field(default_factory=list)  # loop time of each submit_sm
    given_ids: list[str] = field(default_factory=list)  # message_id of each accepted submit
    deliver_statuses: list[int] = field(default_factory=list)
    held_receipts: list[DeliverSm] = field(default_factory=list)
    sessions: list[SmppSession] = field(default_factory=list)
    binds: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(5001))
    _message_ids: dict[tuple[str, int], str] = field(default_factory=dict)  # (dest, ref) -> id
    _server: asyncio.Server | None = None
    _held: list[asyncio.Future[None]] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._on_connect, "127.0.0.1", port)

    def restart_ids(self) -> None:
        """The SMSC restarted its message id counter: ids given before are given again."""
        self._ids = itertools.count(5001)
        self._message_ids.clear()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for s in list(self.sessions):
            s.abort("peer stopped")
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def wait_until(self, predicate: Callable[[], object], within: float = 10.0) -> None:
        async def _wait() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(_wait(), within)

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session: SmppSession

        async def handler(pdu: Pdu) -> Pdu | None:
            return await self._on_request(session, pdu)

        session = SmppSession(reader, writer, handler, name="fault-smsc", response_timeout=5.0)
        self.sessions.append(session)
        try:
            await session.run()
        finally:
            self.sessions.remove(session)
            for fut in self._held:
                if not fut.done():
                    fut.set_result(None)
            await session.close()
            self._changed.set()

    async def _on_request(self, session: SmppSession, pdu: Pdu) -> Pdu | None:
        f = self.faults
        if isinstance(pdu, Bind):
            self.binds += 1
            self._changed.set()
            return BindResp(pdu.command_id | c.RESP_BIT, pdu.sequence, 0, "fault")
        if not isinstance(pdu, SubmitSm):
            return GenericNack(pdu.sequence, c.ESME_RINVCMDID)
        self.submits.append(pdu)
        self.submit_times.append(asyncio.get_running_loop().time())
        self._changed.set()
        if f.throttle > 0 and len(self.given_ids) >= f.throttle_after:
            f.throttle -= 1
            return SubmitSmResp(pdu.sequence, c.ESME_RTHROTTLED)
        if f.nack > 0:
            f.nack -= 1
            return GenericNack(pdu.sequence, f.nack_status)
        if f.silent > 0 and len(self.given_ids) >= f.silent_after:
            f.silent -= 1
            return None
        if f.drop_after > 0:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._held.append(fut)
            if len([h for h in self._held if not h.done()]) >= f.drop_after:
                f.drop_after = 0
                session.abort("fault peer: disconnect mid-window")
            await fut
            return None
        message_id = self._message_id(pdu)
        self.given_ids.append(message_id)
        text = _text_of(pdu)
        if f.receipts and pdu.registered_delivery & 1:
            final = ("DELIVRD", 2) if f.final_receipts else ("ACCEPTD", 6)
            receipts = [receipt(message_id, *final, text=text)]
            if f.wrong_receipts:
                receipts = [
                    receipt("999999", "DELIVRD", 2),  # an id we never gave out
                    DeliverSm(0, "1", "2", b"id: stat:", esm_class=c.ESM_TYPE_DELIVERY_RECEIPT),
                    receipt(message_id, "ENROUTE", 1),
                    receipt(message_id, "DELIVRD", 2),
                    receipt(message_id, "DELIVRD", 2),  # duplicate
                    receipt(message_id, "UNDELIV", 5),  # must not regress a delivered part
                ]
            if f.hold_receipts:
                self.held_receipts += receipts
            elif f.receipt_first:
                for r in receipts:
                    await self.deliver(r, session)
            else:
                self._spawn(self._send_all(receipts, session))
        return SubmitSmResp(pdu.sequence, 0, message_id)

    def _message_id(self, pdu: SubmitSm) -> str:
        if self.faults.empty_ids:
            return ""
        concat = _concat_ref(pdu)
        if not self.faults.one_id_per_message or concat is None:
            return str(next(self._ids))
        key = (pdu.destination_addr, concat)
        if key not in self._message_ids:
            self._message_ids[key] = str(next(self._ids))
        return self._message_ids[key]

    async def _send_all(self, pdus: list[DeliverSm], session: SmppSession) -> None:
        await asyncio.sleep(0)  # after our submit_sm_resp went out
        for p in pdus:
            await self.deliver(p, session)

    async def release_receipts(self, n: int) -> None:
        for r in self.held_receipts[:n]:
            await self.deliver(r)
        del self.held_receipts[:n]

    def alert(self, source: str, esme: str) -> None:
        """Send an alert_notification (it has no response) on the newest bound session."""
        session = next(s for s in reversed(self.sessions) if not s.closed)
        session.send(AlertNotification(session.next_sequence(), source, esme, 1, 1, 1, 1))

    async def deliver(self, pdu: DeliverSm, session: SmppSession | None = None) -> int:
        """Send a deliver_sm to `session` (or the newest bound one); the resp status."""
        session = session or next(s for s in reversed(self.sessions) if not s.closed)
        try:
            resp = await session.request(pdu)
        except SessionError:
            status = -1
        else:
            status = resp.status if isinstance(resp, DeliverSmResp) else -2
        self.deliver_statuses.append(status)
        self._changed.set()
        return status


def _concat_ref(pdu: SubmitSm) -> int | None:
    """The 8-bit concatenation reference of a UDH part, else None."""
    sm = pdu.short_message
    if pdu.esm_class & c.ESM_UDHI and len(sm) >= 6 and sm[1] == 0x00:
        return sm[3]
    return None


def _text_of(pdu: SubmitSm) -> str:
    """The first 20 characters of the message (GSM-7 unpacked; ASCII text in the tests)."""
    sm = pdu.short_message
    if pdu.esm_class & c.ESM_UDHI and sm:
        sm = sm[1 + sm[0] :]
    return sm[:20].decode("latin-1")


def receipt(message_id: str, stat: str, state: int, text: str = "") -> DeliverSm:
    text = (
        f"id:{message_id} sub:001 dlvrd:001 submit date:2611221200 done date:261122120001 "
        f"stat:{stat} err:000 text:{text}"
    )
    return DeliverSm(
        0,
        "491701234567",
        "MailSMS",
        text.encode(),
        source_addr_ton=1,
        esm_class=c.ESM_TYPE_DELIVERY_RECEIPT,
        tlvs=(
            Tlv(c.TLV_RECEIPTED_MESSAGE_ID, message_id.encode() + b"\0"),
            Tlv(c.TLV_MESSAGE_STATE, bytes((state,))),
        ),
    )


def mo_part(
    ref: int,
    total: int,
    seq: int,
    payload: bytes,
    source: str = "491701234567",
    source_ton: int = 1,
    dest_ton: int = 1,
) -> DeliverSm:
    udh = bytes((0x05, 0x00, 0x03, ref, total, seq))
    return DeliverSm(
        0,
        source,
        "4930123456",
        udh + payload,
        source_addr_ton=source_ton,
        dest_addr_ton=dest_ton,
        esm_class=0x40,
    )


@contextlib.asynccontextmanager
async def running_fault_smsc(faults: Faults | None = None):  # type: ignore[no-untyped-def]
    peer = FaultSmsc(faults or Faults())
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()
