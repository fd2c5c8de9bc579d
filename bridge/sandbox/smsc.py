"""The sandbox SMSC: an in-process SMPP server that plays the phone network for `make run`.

The bridge binds to it with SmppTransport over real TCP (system_id/password checked).
Every MT SMS is reassembled (UDH or sar_* TLVs; GSM-7 unpacked when the bridge packs it,
`gsm7_packed`) and appended, as a phone would show it, to a JSON-lines inbox file; each
part gets a delivery receipt after `receipt_delay`. Rules (`sandbox_rules`) fail or
delay the SMS to single numbers or prefixes: a failed SMS never reaches the phone's
inbox, a delayed one reaches it with its receipt. A second kind of bind, system_id
"phone" (any password), injects MO: its submit_sm is delivered to the bridge as
deliver_sm (split with UDH when long, packed with `gsm7_packed`), and the phone's
submit_sm_resp carries the bridge's deliver_sm_resp status. The phone side
(`read_inbox`, `send_mo`) lives in `sandbox_phone` and is re-exported here.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Final, Literal

from bridge.sandbox.phone import (  # re-exported: the CLI and tests import them here
    PHONE_SYSTEM_ID,
    SandboxError,
    SandboxSms,
    read_inbox,
    send_mo,
)
from bridge.sandbox.rules import Failure, RuleBook
from bridge.sandbox.settings import SandboxConfig
from bridge.smpp import constants as c
from bridge.smpp.address import address_in, source_address
from bridge.smpp.encoding import fill_bits_after, pack_septets, unpack_septets
from bridge.smpp.mo import alphabet_of, decode_mo
from bridge.smpp.pdu import (
    Bind,
    BindResp,
    DeliverSm,
    DeliverSmResp,
    GenericNack,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    find_tlv,
)
from bridge.smpp.reassembly import Reassembler
from bridge.smpp.session import SessionError, SmppSession
from bridge.smpp.udh import (
    InformationElement,
    UdhError,
    concat_udh,
    find_concat,
    sar_concat,
    split_udh,
)
from bridge.text.gsm7 import is_gsm7
from bridge.text.sms import split_sms

__all__ = [
    "PHONE_SYSTEM_ID",
    "SandboxConfig",
    "SandboxError",
    "SandboxSms",
    "SandboxSmsc",
    "read_inbox",
    "send_mo",
]

log: Final = logging.getLogger(__name__)


_Receipt = Literal["delivered", "failed", "expired", "none"]


@dataclass(frozen=True, slots=True)
class _Fate:
    """What happens to one SMS: the submit_sm_resp status, the receipt it gets and when,
    and after how many seconds the phone shows it (None: never)."""

    submit_status: int
    receipt: _Receipt
    receipt_delay: float
    phone_delay: float | None


@dataclass(eq=False)
class _Conn:
    session: SmppSession | None = None
    kind: Literal["", "bridge", "phone"] = ""
    can_receive: bool = False
    part_ids: dict[tuple[str, str, int, int], dict[int, str]] = field(default_factory=dict)


_RECEIPT_OF: Final[dict[Failure, _Receipt]] = {
    Failure.UNDELIVERABLE: "failed",
    Failure.EXPIRED: "expired",
    Failure.SILENT: "none",
}
_RECEIPT_STATES: Final = {  # receipt -> (stat, message_state, err)
    "delivered": ("DELIVRD", 2, "000"),
    "failed": ("UNDELIV", 5, "001"),
    "expired": ("EXPIRED", 3, "000"),
    "none": ("UNKNOWN", 7, "000"),
}


def _stamp(t: datetime) -> str:
    return t.strftime("%y%m%d%H%M")


class SandboxSmsc:
    """The sandbox SMSC server; `await start()`, then `port` is the bound port."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._id_prefix = datetime.now(UTC).strftime("%y%m%d%H%M%S")
        self._reassembler = Reassembler(timeout=3600.0)
        self._changed = asyncio.Event()
        self._release = asyncio.Event()
        self._holding = False
        self.rules = RuleBook(config.rules, config.rules_file)
        # What happened, for tests and the CLI: newest last.
        self.delivered: list[SandboxSms] = []
        self.deliver_statuses: list[int] = []
        self.bind_failures: list[str] = []

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self.config.port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.config.inbox_path.parent.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.start_server(
            self._on_connect, self.config.host, self.config.port
        )
        log.info("sandbox SMSC listening on %s:%d", self.config.host, self.port)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop as an SMSC does: no new connection; each bound client gets the answers to
        the submit_sm being handled (at most `grace` seconds), then an `unbind`, then the
        connection closes (`drop_connections` is the crash). Receipts not yet sent are
        dropped: the sandbox keeps nothing across a restart."""
        if self._server is not None:
            self._server.close()
        if not self._holding:  # held submits stay unanswered, as when it crashes
            await asyncio.gather(*(self._part(conn, grace) for conn in list(self._conns)))
        self.drop_connections()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    @staticmethod
    async def _part(conn: _Conn, grace: float) -> None:
        session = conn.session
        if session is None or session.closed:
            return
        await session.drain(grace)
        if conn.kind:
            await session.unbind()

    # --- fault injection (tests, outage drills) --------------------------------------------

    def hold_responses(self) -> None:
        """Stop answering submit_sm from the bridge until `drop_connections()`."""
        self._holding = True
        self._release.clear()

    def drop_connections(self) -> None:
        """Close every session at once, like a crashed SMSC; held submits stay unanswered."""
        self._holding = False
        for conn in list(self._conns):
            if conn.session is not None:
                conn.session.abort("sandbox dropped the connection")
        self._release.set()

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until `predicate()` holds (re-checked on every sandbox event)."""

        async def _wait() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(_wait(), within)

    def _notify(self) -> None:
        self._changed.set()

    # --- connections ----------------------------------------------------------------------

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn()

        async def handler(pdu: Pdu) -> Pdu | None:
            return await self._on_request(conn, pdu)

        conn.session = SmppSession(reader, writer, handler, name="sandbox", response_timeout=10.0)
        self._conns.add(conn)
        try:
            await conn.session.run()
        finally:
            self._conns.discard(conn)
            await conn.session.close()
            self._notify()

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_request(self, conn: _Conn, pdu: Pdu) -> Pdu | None:
        if isinstance(pdu, Bind):
            return self._on_bind(conn, pdu)
        if not conn.kind:
            return GenericNack(pdu.sequence, c.ESME_RINVBNDSTS)
        if isinstance(pdu, SubmitSm):
            if conn.kind == "phone":
                return await self._on_phone_submit(pdu)
            return await self._on_bridge_submit(conn, pdu)
        return GenericNack(pdu.sequence, c.ESME_RINVCMDID)

    def _on_bind(self, conn: _Conn, pdu: Bind) -> Pdu | None:
        resp_id = pdu.command_id | c.RESP_BIT
        if conn.kind:
            return BindResp(resp_id, pdu.sequence, c.ESME_RALYBND)
        cfg = self.config
        if pdu.system_id == PHONE_SYSTEM_ID:
            conn.kind = "phone"
        elif pdu.system_id == cfg.system_id and pdu.password == cfg.password:
            conn.kind = "bridge"
            conn.can_receive = pdu.command_id != c.BIND_TRANSMITTER
        else:
            status = c.ESME_RINVPASWD if pdu.system_id == cfg.system_id else c.ESME_RINVSYSID
            self.bind_failures.append(f"{pdu.system_id}: {c.status_name(status)}")
            log.warning("sandbox: refused bind of %r (%s)", pdu.system_id, c.status_name(status))
            assert conn.session is not None
            conn.session.send(BindResp(resp_id, pdu.sequence, status))
            conn.session.abort("bind refused")
            self._notify()
            return None
        self._notify()
        return BindResp(resp_id, pdu.sequence, c.ESME_ROK, "sandbox")

    # --- MT: bridge -> phone --------------------------------------------------------------

    async def _on_bridge_submit(self, conn: _Conn, pdu: SubmitSm) -> Pdu | None:
        if self._holding:
            await self._release.wait()
            return None
        message_id = f"{self._id_prefix}{next(self._ids):06d}"
        now = datetime.now(UTC)
        source = address_in(pdu.source_addr_ton, pdu.source_addr)
        destination = address_in(pdu.dest_addr_ton, pdu.destination_addr)
        fate = self._fate(destination)
        if fate.submit_status != c.ESME_ROK:
            log.info("sandbox: refused the SMS to %s by a rule", destination)
            self._notify()
            return SubmitSmResp(pdu.sequence, fate.submit_status)
        ies: tuple[InformationElement, ...] = ()
        sm = pdu.short_message or find_tlv(pdu.tlvs, c.TLV_MESSAGE_PAYLOAD) or b""
        payload = sm
        if pdu.esm_class & c.ESM_UDHI:
            try:
                ies, payload = split_udh(sm)
            except UdhError as exc:
                return SubmitSmResp(pdu.sequence, c.ESME_RINVESMCLASS, f"bad UDH: {exc}"[:64])
        payload = self._unpacked(pdu.data_coding, payload, len(sm) - len(payload))
        concat = find_concat(ies) or sar_concat(pdu.tlvs)
        if concat is not None and concat.total > 1:
            key = (source, destination, concat.ref, concat.total)
            conn.part_ids.setdefault(key, {})[concat.seq] = message_id
            done = self._reassembler.add(key, concat.seq, payload, pdu.data_coding, 0.0)
            if done is not None:
                self._reassembler.discard(key)
                ids = conn.part_ids.pop(key, {})
                text, enc = decode_mo(pdu.data_coding, done.payload, ies)
                parts = tuple(ids.get(i, "") for i in range(1, concat.total + 1))
                self._arrive(
                    SandboxSms(destination, source, text, concat.total, enc, now, parts), fate
                )
        else:
            text, enc = decode_mo(pdu.data_coding, payload, ies)
            self._arrive(SandboxSms(destination, source, text, 1, enc, now, (message_id,)), fate)
        if pdu.registered_delivery & 0x01 and fate.receipt != "none":
            part_text, _ = decode_mo(pdu.data_coding, payload, ies)
            self._spawn(self._send_receipt(conn, pdu, message_id, now, part_text, fate))
        return SubmitSmResp(pdu.sequence, c.ESME_ROK, message_id)

    def _unpacked(self, data_coding: int, payload: bytes, udh_octets: int) -> bytes:
        """The septets of a GSM-7 part from a bridge that packs them (`gsm7_packed`)."""
        if not self.config.gsm7_packed or alphabet_of(data_coding) != "gsm7":
            return payload
        return unpack_septets(payload, fill_bits_after(udh_octets))

    def _fate(self, destination: str) -> _Fate:
        """What the settings and the rules say happens to an SMS to `destination`."""
        cfg = self.config
        rule = self.rules.pick(destination)
        fail = rule.fail if rule is not None else None
        if fail is Failure.REJECTED:
            return _Fate(c.ESME_RINVDSTADR, "none", 0.0, None)
        if fail is Failure.BUSY:
            return _Fate(c.ESME_RSYSERR, "none", 0.0, None)
        late = rule.delay if rule is not None else None
        receipt: _Receipt = _RECEIPT_OF[fail] if fail is not None else cfg.receipt
        reaches = fail is None and cfg.receipt != "failed"
        return _Fate(
            c.ESME_ROK,
            receipt,
            cfg.receipt_delay if late is None else late,
            (late or 0.0) if reaches else None,
        )

    def _arrive(self, sms: SandboxSms, fate: _Fate) -> None:
        """The phone gets `sms` now, later, or (a failed SMS) never."""
        if fate.phone_delay is None:
            log.info("sandbox: SMS to %s not delivered (receipt %s)", sms.destination, fate.receipt)
            self._notify()
        elif fate.phone_delay > 0:
            self._spawn(self._store_later(sms, fate.phone_delay))
        else:
            self._store(sms)

    async def _store_later(self, sms: SandboxSms, delay: float) -> None:
        await asyncio.sleep(delay)
        self._store(replace(sms, received_at=datetime.now(UTC)))

    def _store(self, sms: SandboxSms) -> None:
        self.delivered.append(sms)
        line = {
            "time": sms.received_at.isoformat(),
            "destination": sms.destination,
            "source": sms.source,
            "text": sms.text,
            "parts": sms.parts,
            "encoding": sms.encoding,
            "message_ids": list(sms.message_ids),
        }
        with self.config.inbox_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
            fh.flush()
        log.info("sandbox: SMS to %s from %s (%d parts)", sms.destination, sms.source, sms.parts)
        self._notify()

    async def _send_receipt(
        self,
        conn: _Conn,
        pdu: SubmitSm,
        message_id: str,
        submitted: datetime,
        text: str,
        fate: _Fate,
    ) -> None:
        await asyncio.sleep(fate.receipt_delay)
        delivered = fate.receipt == "delivered"
        stat, state, err = _RECEIPT_STATES[fate.receipt]
        snippet = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text[:20])
        body = (
            f"id:{message_id} sub:001 dlvrd:{'001' if delivered else '000'} "
            f"submit date:{_stamp(submitted)} done date:{_stamp(datetime.now(UTC))} "
            f"stat:{stat} err:{err} text:{snippet}"
        )
        receipt = DeliverSm(
            0,
            pdu.destination_addr,
            pdu.source_addr,
            body.encode("ascii"),
            source_addr_ton=pdu.dest_addr_ton,
            source_addr_npi=pdu.dest_addr_npi,
            dest_addr_ton=pdu.source_addr_ton,
            dest_addr_npi=pdu.source_addr_npi,
            esm_class=c.ESM_TYPE_DELIVERY_RECEIPT,
            tlvs=(
                Tlv(c.TLV_RECEIPTED_MESSAGE_ID, message_id.encode("ascii") + b"\0"),
                Tlv(c.TLV_MESSAGE_STATE, bytes((state,))),
            ),
        )
        for _ in range(1 + max(0, self.config.redeliver_attempts)):
            session = conn.session if conn.session and not conn.session.closed else None
            status = await self._deliver(receipt, session if conn.can_receive else None)
            if not c.is_temporary(status):
                return
            await asyncio.sleep(self.config.redeliver_delay)

    async def _deliver(self, pdu: DeliverSm, session: SmppSession | None = None) -> int:
        """Send one deliver_sm to `session` or any bound bridge; the deliver_sm_resp status."""
        if session is None:
            targets = [
                x.session
                for x in self._conns
                if x.kind == "bridge" and x.can_receive and x.session and not x.session.closed
            ]
            if not targets:
                log.warning("sandbox: no bridge bound to receive a deliver_sm; dropped")
                return c.ESME_RSYSERR
            session = targets[0]
        try:
            resp = await session.request(pdu)
        except SessionError as exc:
            log.warning("sandbox: deliver_sm not answered: %s", exc)
            status = c.ESME_RSYSERR
        else:
            status = (
                resp.status if isinstance(resp, DeliverSmResp | GenericNack) else c.ESME_RSYSERR
            )
        self.deliver_statuses.append(status)
        self._notify()
        return status

    # --- MO: phone -> bridge --------------------------------------------------------------

    async def _on_phone_submit(self, pdu: SubmitSm) -> Pdu:
        sm = pdu.short_message or find_tlv(pdu.tlvs, c.TLV_MESSAGE_PAYLOAD) or b""
        text, _ = decode_mo(pdu.data_coding, sm)
        phone = address_in(pdu.source_addr_ton, pdu.source_addr)
        service = address_in(pdu.dest_addr_ton, pdu.destination_addr)
        status = await self.deliver_mo(phone, service, text)
        message_id = f"{self._id_prefix}{next(self._ids):06d}" if status == c.ESME_ROK else ""
        return SubmitSmResp(pdu.sequence, status, message_id)

    async def deliver_mo(self, source: str, destination: str, text: str) -> int:
        """Deliver `text` typed on phone `source` to the bridge; the first non-zero status."""
        segments = split_sms(text, "gsm7" if is_gsm7(text) else "ucs2")
        payloads = segments.payloads  # no part ends in a CR a receiver drops (split_sms)
        packed = self.config.gsm7_packed and segments.encoding == "gsm7"
        total = len(payloads)
        src = source_address(source)
        dst = source_address(destination)
        ref = next(self._ids) & 0xFF
        for seq, payload in enumerate(payloads, 1):
            udh = concat_udh(ref, total, seq) if total > 1 else b""
            if packed:
                payload = pack_septets(payload, fill_bits_after(len(udh)), 140 - len(udh))
            status = await self._deliver(
                DeliverSm(
                    0,
                    src.addr,
                    dst.addr,
                    udh + payload,
                    source_addr_ton=src.ton,
                    source_addr_npi=src.npi,
                    dest_addr_ton=dst.ton,
                    dest_addr_npi=dst.npi,
                    esm_class=c.ESM_UDHI if total > 1 else 0,
                    data_coding=segments.data_coding,
                )
            )
            if status != c.ESME_ROK:
                return status
        return c.ESME_ROK
