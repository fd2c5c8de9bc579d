"""The SMPP transport: OutboundSms -> submit_sm parts, deliver_sm/data_sm -> Inbox, errors -> ours.

Uses our own asyncio SMPP layer (`bridge.smpp`). Receipts and single-part MO are
acknowledged only after the inbox call returned (committed); an inbox failure is
answered with ESME_RX_T_APPN (0x64) so the SMSC redelivers later, and the session keeps
running. Parts of a concatenated MO are acked once buffered in memory; the joined
message follows the same commit-then-ack rule for its last part (partial MO is not yet
persisted: a restart loses buffered parts - a known follow-up).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Final, Literal

from bridge.smpp import constants as c
from bridge.smpp.address import address_in, destination_address, source_address
from bridge.smpp.esme import Esme, EsmeSettings, NotBound
from bridge.smpp.mo import Dcs0Alphabet, decode_mo
from bridge.smpp.pdu import (
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    GenericNack,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    find_tlv,
)
from bridge.smpp.reassembly import Reassembler
from bridge.smpp.receipt import is_receipt, parse_receipt
from bridge.smpp.session import ConnectionLost, ResponseTimeout
from bridge.smpp.udh import InformationElement, UdhError, concat_udh, find_concat, sar_concat
from bridge.smpp.udh import split_udh as split_udh_ies
from bridge.text.sms import split_sms
from bridge.transports.base import (
    InboundSms,
    Inbox,
    OutboundSms,
    PermanentFailure,
    SubmitResult,
    TemporaryFailure,
)

log: Final = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SmppConfig:
    """One SMPP bind, as the settings layer hands it over."""

    name: str
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    bind_type: Literal["transceiver", "transmitter", "receiver"] = "transceiver"
    window: int = 10
    enquire_link_interval: float = 30.0
    enquire_link_timeout: float = 10.0
    response_timeout: float = 30.0
    connect_timeout: float = 10.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    bind_failure_min: float = 10.0
    bind_wait: float = 5.0  # how long submit waits for a (re)bind before "not bound"
    service_type: str = ""
    udh_ref16: bool = False
    dcs0_alphabet: Dcs0Alphabet = "gsm7"  # what data_coding 0x00 means on this SMSC (MO)
    source_ton: int | None = None  # override the TON/NPI derived from the sender id
    source_npi: int | None = None
    mo_reassembly_timeout: float = 1800.0
    tls: bool = False
    tls_verify: bool = True

    def esme_settings(self) -> EsmeSettings:
        return EsmeSettings(
            host=self.host,
            port=self.port,
            system_id=self.system_id,
            password=self.password,
            system_type=self.system_type,
            bind_type=self.bind_type,
            window=self.window,
            response_timeout=self.response_timeout,
            connect_timeout=self.connect_timeout,
            enquire_link_interval=self.enquire_link_interval,
            enquire_link_timeout=self.enquire_link_timeout,
            reconnect_min=self.reconnect_min,
            reconnect_max=self.reconnect_max,
            bind_failure_min=self.bind_failure_min,
            tls=self.tls,
            tls_verify=self.tls_verify,
        )


def failure_for(status: int, what: str) -> TemporaryFailure | PermanentFailure:
    """Our error for a non-zero command_status, via the one temporary/permanent table."""
    reason = f"{what}: {c.status_name(status)}"
    if c.is_temporary(status):
        return TemporaryFailure(reason, code=status)
    return PermanentFailure(reason, code=status)


class SmppTransport:
    """A Transport over one self-healing SMPP bind."""

    def __init__(self, config: SmppConfig, *, rng: random.Random | None = None) -> None:
        self.name = config.name
        self.config = config
        self._rng = rng or random.Random()
        self._esme = Esme(config.esme_settings(), self._on_request, name=config.name, rng=rng)
        self._inbox: Inbox | None = None
        self._reassembler = Reassembler(timeout=config.mo_reassembly_timeout)
        self._ref = self._rng.randrange(0x10000)

    # --- Transport protocol -----------------------------------------------------------------

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox
        await self._esme.start()

    async def stop(self) -> None:
        await self._esme.stop()

    @property
    def bound(self) -> bool:
        return self._esme.bound

    @property
    def last_error(self) -> str:
        return self._esme.last_error

    async def wait_bound(self, within: float) -> bool:
        return await self._esme.wait_bound(within)

    def _next_ref(self) -> int:
        self._ref = (self._ref + 1) & 0xFFFF
        return self._ref if self.config.udh_ref16 else self._ref & 0xFF

    async def submit(self, sms: OutboundSms) -> SubmitResult:
        cfg = self.config
        if not self._esme.bound and not await self._esme.wait_bound(cfg.bind_wait):
            raise TemporaryFailure(f"{self.name}: not bound ({self._esme.last_error})")
        try:
            segments = split_sms(sms.text, sms.encoding, ref16=cfg.udh_ref16)
        except ValueError as exc:
            raise PermanentFailure(f"text cannot be sent as {sms.encoding}: {exc}") from exc
        payloads = segments.payloads
        total = len(payloads)
        if total > 255:
            raise PermanentFailure(f"text needs {total} parts; at most 255 can be concatenated")
        src = source_address(sms.source)
        dst = destination_address(sms.destination)
        src_ton = src.ton if cfg.source_ton is None else cfg.source_ton
        src_npi = src.npi if cfg.source_npi is None else cfg.source_npi
        registered = 1 if sms.want_receipt else 0
        ref = self._next_ref() if total > 1 else 0
        esm_class = c.ESM_UDHI if total > 1 else 0
        ids: list[str] = []
        # Parts go one after another. If part k fails after parts 1..k-1 were accepted we
        # raise anyway: dispatch resubmits the whole order, so the handset may see the early
        # parts twice (a rare duplicate beats a lost or truncated message).
        for seq, payload in enumerate(payloads, 1):
            udh = concat_udh(ref, total, seq, ref16=cfg.udh_ref16) if total > 1 else b""
            pdu = SubmitSm(
                0,
                src.addr,
                dst.addr,
                udh + payload,
                service_type=cfg.service_type,
                source_addr_ton=src_ton,
                source_addr_npi=src_npi,
                dest_addr_ton=dst.ton,
                dest_addr_npi=dst.npi,
                esm_class=esm_class,
                registered_delivery=registered,
                data_coding=segments.data_coding,
            )
            what = f"order {sms.order_id} part {seq}/{total}"
            try:
                resp = await self._esme.request(pdu)
            except NotBound as exc:
                raise TemporaryFailure(f"{what}: {exc}") from None
            except ResponseTimeout:
                log.warning("%s: %s: no response, dropping the connection", self.name, what)
                raise TemporaryFailure(f"{what}: no response (unknown outcome)") from None
            except ConnectionLost as exc:
                raise TemporaryFailure(
                    f"{what}: connection lost (unknown outcome): {exc}"
                ) from None
            except (UnicodeEncodeError, ValueError) as exc:
                raise PermanentFailure(f"{what}: cannot encode submit_sm: {exc}") from None
            if isinstance(resp, GenericNack):
                err = failure_for(resp.status or c.ESME_RSYSERR, f"{what}: generic_nack")
                log.warning("%s: %s", self.name, err.reason)
                raise err
            if not isinstance(resp, SubmitSmResp):
                raise TemporaryFailure(f"{what}: unexpected answer 0x{resp.command_id:08X}")
            if resp.status != c.ESME_ROK:
                err = failure_for(resp.status, what)
                log.info("%s: %s rejected (%s)", self.name, what, c.status_name(resp.status))
                raise err
            ids.append(resp.message_id)
        log.debug("%s: order %s submitted as %s", self.name, sms.order_id, ids)
        return SubmitResult(self.name, tuple(ids))

    # --- incoming -----------------------------------------------------------------------------

    async def _on_request(self, pdu: Pdu) -> Pdu | None:
        if isinstance(pdu, DeliverSm):
            sm = pdu.short_message
            if not sm:
                sm = find_tlv(pdu.tlvs, c.TLV_MESSAGE_PAYLOAD) or b""
            return DeliverSmResp(pdu.sequence, await self._on_incoming(pdu, sm))
        if isinstance(pdu, DataSm):
            sm = find_tlv(pdu.tlvs, c.TLV_MESSAGE_PAYLOAD) or b""
            return DataSmResp(pdu.sequence, await self._on_incoming(pdu, sm))
        log.warning("%s: unsupported request 0x%08X", self.name, pdu.command_id)
        return GenericNack(pdu.sequence, c.ESME_RINVCMDID)

    async def _on_incoming(self, pdu: DeliverSm | DataSm, sm: bytes) -> int:
        """Hand a receipt or an MO to the inbox; the command_status to answer with."""
        inbox = self._inbox
        if inbox is None:
            return c.ESME_RX_T_APPN
        if is_receipt(pdu.esm_class, pdu.tlvs, sm):
            receipt = parse_receipt(
                self.name, esm_class=pdu.esm_class, tlvs=pdu.tlvs, short_message=sm
            )
            if receipt is None:  # no message id: nothing could ever be matched with it
                log.warning("%s: receipt without message id ignored: %r", self.name, sm[:200])
                return c.ESME_ROK
            try:
                await inbox.on_receipt(receipt)
            except Exception as exc:
                log.warning(
                    "%s: receipt %s not stored (%s); answering 0x64",
                    self.name,
                    receipt.message_id,
                    exc,
                )
                return c.ESME_RX_T_APPN
            return c.ESME_ROK
        return await self._on_mo(pdu, sm, inbox)

    async def _on_mo(self, pdu: DeliverSm | DataSm, sm: bytes, inbox: Inbox) -> int:
        ies: tuple[InformationElement, ...] = ()
        payload = sm
        if pdu.esm_class & c.ESM_UDHI:
            try:
                ies, payload = split_udh_ies(sm)
            except UdhError as exc:
                log.warning("%s: MO with a malformed UDH, taken as text: %s", self.name, exc)
        concat = find_concat(ies) if ies else sar_concat(pdu.tlvs)
        source = address_in(pdu.source_addr_ton, pdu.source_addr)
        destination = address_in(pdu.dest_addr_ton, pdu.destination_addr)
        parts = 1
        key = None
        if concat is not None and concat.total > 1:
            key = (source, destination, concat.ref, concat.total)
            now = asyncio.get_running_loop().time()
            done = self._reassembler.add(key, concat.seq, payload, pdu.data_coding, now)
            if done is None:
                return c.ESME_ROK  # buffered in memory only (see the module docstring)
            payload, parts = done.payload, done.parts
        text, encoding = decode_mo(pdu.data_coding, payload, ies, dcs0=self.config.dcs0_alphabet)
        sms = InboundSms(
            transport=self.name,
            source=source,
            destination=destination,
            text=text,
            encoding=encoding,
            parts=parts,
            smsc_fields={
                "source_ton": str(pdu.source_addr_ton),
                "source_npi": str(pdu.source_addr_npi),
                "dest_ton": str(pdu.dest_addr_ton),
                "data_coding": str(pdu.data_coding),
                "service_type": pdu.service_type,
            },
        )
        try:
            await inbox.on_message(sms)
        except Exception as exc:
            log.warning("%s: MO from %s not stored (%s); answering 0x64", self.name, source, exc)
            return c.ESME_RX_T_APPN
        if key is not None:
            self._reassembler.discard(key)
        return c.ESME_ROK
