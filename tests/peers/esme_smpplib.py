"""An ESME on Python's smpplib (blocking sockets), behind `EsmeDriver`.

smpplib is synchronous: binding and sending run in a worker thread, and a listener
thread of its own reads every PDU (`read_once`). It answers enquire_link, answers
deliver_sm with ESME_ROK (or the status set by `answer_deliveries_with`), and sends an
enquire_link when the line is idle for `timeout` seconds (the library's keep-alive).
Long texts are split by the library itself (`smpplib.gsm.make_parts`: UDH, 153 GSM
septets or 134 UCS-2 octets per part; with `sar_ref`, sar_* TLVs instead of the UDH).
Every PDU read is recorded (`seen`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.gsm
import smpplib.smpp

from tests.peers.esme import BindResult, BindType, Delivery, SubmitResult, address

_BIND_CALLS = {
    BindType.TRANSCEIVER: "bind_transceiver",
    BindType.TRANSMITTER: "bind_transmitter",
    BindType.RECEIVER: "bind_receiver",
}
_TLV_FIELDS = {0x001E: "receipted_message_id", 0x0427: "message_state"}


def _octets(value: Any) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode("latin-1")


def _text(value: Any) -> str:
    return _octets(value).decode("latin-1")


class _Client(smpplib.client.Client):  # type: ignore[misc]
    """smpplib's Client with one lock around sending (two threads send) and a hook on reads."""

    def __init__(self, host: str, port: int, timeout: float, on_read: Any) -> None:
        super().__init__(host, port, timeout=timeout, allow_unknown_opt_params=True)
        self._send_lock = threading.Lock()
        self._on_read = on_read

    def send_pdu(self, p: Any) -> bool:
        with self._send_lock:
            return bool(super().send_pdu(p))

    def read_pdu(self) -> Any:
        pdu = super().read_pdu()
        self._on_read(pdu)
        return pdu


@dataclass(eq=False)
class SmpplibEsme:
    host: str
    port: int
    timeout: float = 5.0  # socket timeout: an idle line gets an enquire_link after it
    name: str = "smpplib"
    deliveries: list[Delivery] = field(default_factory=list)
    binds: list[BindResult] = field(default_factory=list)
    submits: list[SubmitResult] = field(default_factory=list)
    seen: list[tuple[str, int, int]] = field(default_factory=list)  # (command, status, seq)
    errors: list[str] = field(default_factory=list)
    _answer: int = 0  # the deliver_sm_resp status this client answers with
    _client: _Client | None = None
    _listener: threading.Thread | None = None
    _responses: dict[tuple[str, int], Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- the listener thread ------------------------------------------------------------

    def _on_read(self, pdu: Any) -> None:
        with self._lock:
            self.seen.append((str(pdu.command), int(pdu.status or 0), int(pdu.sequence)))
            self._responses[(str(pdu.command), int(pdu.sequence))] = pdu

    def _on_deliver(self, pdu: Any, **_: Any) -> int | None:
        if pdu.command != "deliver_sm":
            return None  # alert_notification comes here too; it has no response
        tlvs = tuple(
            (tag, _octets(getattr(pdu, attr)))
            if attr != "message_state"
            else (tag, bytes((int(pdu.message_state),)))
            for tag, attr in _TLV_FIELDS.items()
            if getattr(pdu, attr, None) is not None
        )
        self.deliveries.append(
            Delivery(
                source=_text(pdu.source_addr),
                destination=_text(pdu.destination_addr),
                esm_class=int(pdu.esm_class or 0),
                data_coding=int(pdu.data_coding or 0),
                short_message=_octets(pdu.short_message),
                tlvs=tlvs,
                answered=self._answer,
            )
        )
        return self._answer

    def _listen(self, client: _Client) -> None:
        client.set_message_received_handler(self._on_deliver)
        client.set_message_sent_handler(lambda pdu, **_: None)  # recorded by _on_read
        client.set_error_pdu_handler(lambda pdu: None)  # statuses are recorded by _on_read
        try:
            while client.state != smpplib.consts.SMPP_CLIENT_STATE_CLOSED:
                client.read_once()
        except (smpplib.exceptions.ConnectionError, OSError) as exc:
            self.errors.append(f"connection ended: {exc!r}")
        except smpplib.exceptions.PDUError as exc:
            self.errors.append(f"PDU error: {exc}")

    # --- EsmeDriver -----------------------------------------------------------------------

    async def bind(self, bind_type: BindType, system_id: str, password: str) -> BindResult:
        result = await asyncio.to_thread(self._bind, bind_type, system_id, password)
        self.binds.append(result)
        return result

    def _bind(self, bind_type: BindType, system_id: str, password: str) -> BindResult:
        client = _Client(self.host, self.port, self.timeout, self._on_read)
        try:
            client.connect()
            getattr(client, _BIND_CALLS[bind_type])(system_id=system_id, password=password)
        except smpplib.exceptions.PDUError as exc:
            client.disconnect()
            return BindResult(int(exc.args[1]) if len(exc.args) > 1 else None, str(exc.args[0]))
        except (smpplib.exceptions.ConnectionError, OSError) as exc:
            client.disconnect()
            return BindResult(None, f"connection failed: {exc!r}")
        self._client = client
        self._listener = threading.Thread(
            target=self._listen, args=(client,), name="smpplib-listener", daemon=True
        )
        self._listener.start()
        return BindResult(0, "bound")

    async def _response(self, command: str, sequence: int, within: float = 10.0) -> Any:
        deadline = time.monotonic() + within
        while True:
            with self._lock:
                pdu = self._responses.get((command, sequence)) or self._responses.get(
                    ("generic_nack", sequence)
                )
            if pdu is not None:
                return pdu
            if time.monotonic() > deadline:
                raise AssertionError(f"smpplib: no {command} for sequence {sequence}")
            await asyncio.sleep(0.01)

    async def submit(
        self,
        source: str,
        destination: str,
        text: str,
        *,
        ucs2: bool = False,
        receipt: bool = True,
        sar_ref: int | None = None,
    ) -> list[SubmitResult]:
        """`sar_ref`: a long text's parts go without UDH, with the sar_* TLVs and this
        reference (`make_parts(use_udhi=False)`)."""
        encoding = (
            smpplib.consts.SMPP_ENCODING_ISO10646 if ucs2 else smpplib.consts.SMPP_ENCODING_DEFAULT
        )
        parts, data_coding, esm_class = smpplib.gsm.make_parts(
            text, encoding, use_udhi=sar_ref is None
        )
        return await self.submit_parts(
            source, destination, parts, data_coding, esm_class, receipt=receipt, sar_ref=sar_ref
        )

    async def submit_parts(
        self,
        source: str,
        destination: str,
        parts: list[bytes],
        data_coding: int,
        esm_class: int = 0,
        *,
        receipt: bool = True,
        sar_ref: int | None = None,
    ) -> list[SubmitResult]:
        """One submit_sm per part, as given (binary data, a UDH of the caller's); with
        `sar_ref` and several parts, the sar_* TLVs with that reference."""
        client = self._bound()
        src, src_ton, src_npi = address(source)
        dst, dst_ton, dst_npi = address(destination)
        sequences: list[int] = []
        for seq, part in enumerate(parts, 1):
            sar: dict[str, int] = {}
            if sar_ref is not None and len(parts) > 1:
                sar = {
                    "sar_msg_ref_num": sar_ref,
                    "sar_total_segments": len(parts),
                    "sar_segment_seqnum": seq,
                }
            pdu = await asyncio.to_thread(
                client.send_message,
                source_addr_ton=src_ton,
                source_addr_npi=src_npi,
                source_addr=src,
                dest_addr_ton=dst_ton,
                dest_addr_npi=dst_npi,
                destination_addr=dst,
                short_message=part,
                data_coding=data_coding,
                esm_class=esm_class,
                registered_delivery=1 if receipt else 0,
                **sar,
            )
            sequences.append(int(pdu.sequence))
        results = []
        for sequence in sequences:
            resp = await self._response("submit_sm_resp", sequence)
            results.append(SubmitResult(int(resp.status or 0), _text(resp.message_id)))
        self.submits.extend(results)
        return results

    async def answer_deliveries_with(self, status: int) -> None:
        self._answer = status

    async def enquire_link(self) -> int | None:
        client = self._bound()
        pdu = smpplib.smpp.make_pdu("enquire_link", client=client)
        await asyncio.to_thread(client.send_pdu, pdu)
        return int((await self._response("enquire_link_resp", int(pdu.sequence))).status or 0)

    async def unbind(self) -> int | None:
        client = self._bound()
        pdu = smpplib.smpp.make_pdu("unbind", client=client)
        await asyncio.to_thread(client.send_pdu, pdu)
        return int((await self._response("unbind_resp", int(pdu.sequence))).status or 0)

    def _bound(self) -> _Client:
        if self._client is None:
            raise AssertionError("smpplib: not bound")
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client._socket is not None:
            with contextlib.suppress(OSError):
                client._socket.shutdown(socket.SHUT_RDWR)  # wakes the listener's recv
        if self._listener is not None:
            await asyncio.to_thread(self._listener.join, 10)
        if client is not None:
            client.disconnect()

    def report(self) -> dict[str, Any]:
        return {
            "client": self.name,
            "binds": [(b.status, b.detail) for b in self.binds],
            "submits": [(s.status, s.message_id) for s in self.submits],
            "deliveries": [d.as_dict() for d in self.deliveries],
            "seen": list(self.seen),
            "errors": list(self.errors),
        }
