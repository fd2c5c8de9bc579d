"""What an SMSC sends us: deliver_sm / data_sm -> receipt or MO -> Inbox, then the ack status.

Addresses: source and destination are read with the SMSC's address rules
(`bridge.smpp.address.number_in`), so the rest of the bridge sees E.164 whatever TON and
spelling the SMSC used. Receipts: marked ones (esm_class 0x04/0x20 or receipt TLVs),
TLVs first, then the text. Unmarked text in the receipt form counts only on SMSCs with
`text_receipts`, and even then the inbox keeps it as an SMS unless a part has its id;
anything else (`ID: 4711 Stat: OK` from a phone) is an MO. Ids are made canonical per
SMSC (hex vs decimal). MO: the UDH is walked
for 8- and 16-bit concatenation IEs (SAR TLVs otherwise); a part is committed to the
`MoPartStore` before it is acked, and once every part is there the message is decoded
as a whole and handed to the inbox. `deliver_expired` hands over timed-out messages
with a gap marker where parts are missing. Whenever storing fails the answer is
ESME_RX_T_APPN (0x64), so the SMSC delivers again later.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Final

from bridge.smpp import constants as c
from bridge.smpp.address import number_in
from bridge.smpp.encoding import fill_bits_after, unpack_septets
from bridge.smpp.mo import alphabet_of, decode_mo
from bridge.smpp.pdu import DataSm, DataSmResp, DeliverSm, DeliverSmResp, GenericNack, Pdu, find_tlv
from bridge.smpp.receipt import marked_receipt, parse_receipt, text_receipt
from bridge.smpp.stats import BindStats
from bridge.smpp.udh import Concat, InformationElement, UdhError, find_concat, sar_concat, split_udh
from bridge.transports.base import Inbox, MoPartStore
from bridge.transports.mo_parts import join_parts
from bridge.transports.smpp_config import SmppConfig, canonical_id
from bridge.values import InboundSms, MoPart, Receipt

log: Final = logging.getLogger("bridge.transports.smpp")


def gap_marker(seqs: Sequence[int], total: int) -> str:
    return f" [part {','.join(map(str, seqs))} of {total} missing] "


class IncomingHandler:
    """The request handler of one bind's sessions."""

    def __init__(self, config: SmppConfig, parts: MoPartStore, stats: BindStats) -> None:
        self.name = config.name
        self.config = config
        self.parts = parts
        self.stats = stats
        self.inbox: Inbox | None = None

    async def __call__(self, pdu: Pdu) -> Pdu | None:
        if isinstance(pdu, DeliverSm):
            sm = pdu.short_message or find_tlv(pdu.tlvs, c.TLV_MESSAGE_PAYLOAD) or b""
            return DeliverSmResp(pdu.sequence, await self._incoming(pdu, sm))
        if isinstance(pdu, DataSm):
            sm = find_tlv(pdu.tlvs, c.TLV_MESSAGE_PAYLOAD) or b""
            return DataSmResp(pdu.sequence, await self._incoming(pdu, sm))
        log.warning("%s: unsupported request 0x%08X", self.name, pdu.command_id)
        return GenericNack(pdu.sequence, c.ESME_RINVCMDID)

    async def _incoming(self, pdu: DeliverSm | DataSm, sm: bytes) -> int:
        inbox = self.inbox
        if inbox is None:
            return c.ESME_RX_T_APPN
        if marked_receipt(pdu.esm_class, pdu.tlvs):
            return await self._on_receipt(pdu, sm, inbox)
        if self.config.text_receipts and text_receipt(pdu.esm_class, sm):
            return await self._on_text_receipt(pdu, sm, inbox)
        return await self._on_mo(pdu, sm, inbox)

    def _receipt(self, pdu: DeliverSm | DataSm, sm: bytes) -> Receipt | None:
        receipt = parse_receipt(
            self.name, esm_class=pdu.esm_class | 0x04, tlvs=pdu.tlvs, short_message=sm
        )
        if receipt is None:
            return None
        # The id came from the TLV only when that held one: an empty TLV (b"\0", which
        # some SMSCs send) leaves it to the text, written in the text's base.
        raw = find_tlv(pdu.tlvs, c.TLV_RECEIPTED_MESSAGE_ID) or b""
        from_tlv = bool(raw.split(b"\0", 1)[0].decode("latin-1").strip())
        base = self.config.submit_id_base if from_tlv else self.config.receipt_id_base
        message_id = canonical_id(receipt.message_id, base)
        if message_id == receipt.message_id:  # the usual case: no copy
            return receipt
        return dataclasses.replace(receipt, message_id=message_id)

    async def _on_receipt(self, pdu: DeliverSm | DataSm, sm: bytes, inbox: Inbox) -> int:
        receipt = self._receipt(pdu, sm)
        if receipt is None:  # no message id: nothing could ever be matched with it
            log.warning("%s: receipt without message id ignored: %r", self.name, sm[:200])
            return c.ESME_ROK
        try:
            await inbox.on_receipt(receipt)
        except Exception as exc:
            log.warning(
                "%s: receipt %s not stored (%s); answering 0x64", self.name, receipt.message_id, exc
            )
            return c.ESME_RX_T_APPN
        self.stats.receipts += 1
        return c.ESME_ROK

    async def _on_text_receipt(self, pdu: DeliverSm | DataSm, sm: bytes, inbox: Inbox) -> int:
        """Unmarked receipt text: a receipt if a part has its id, else kept as the SMS it is."""
        receipt = self._receipt(pdu, sm)
        _, payload, _ = self._split(pdu, sm)
        sms = self.compose((self._part(pdu, payload, b"", None),), self._fields(pdu))
        try:
            if receipt is not None and await inbox.on_text_receipt(receipt, sms):
                self.stats.receipts += 1
                return c.ESME_ROK
            if receipt is None:
                await inbox.on_message(sms)
        except Exception as exc:
            log.warning(
                "%s: text from %s not stored (%s); answering 0x64", self.name, sms.source, exc
            )
            return c.ESME_RX_T_APPN
        self.stats.mo += 1
        return c.ESME_ROK

    def _part(
        self, pdu: DeliverSm | DataSm, payload: bytes, udh: bytes, concat: Concat | None
    ) -> MoPart:
        rules = self.config.address_rules
        return MoPart(
            self.name,
            number_in(pdu.source_addr_ton, pdu.source_addr, rules),
            number_in(pdu.dest_addr_ton, pdu.destination_addr, rules),
            concat.ref if concat else 0,
            concat.total if concat else 1,
            concat.seq if concat else 1,
            pdu.data_coding,
            udh,
            payload,
        )

    @staticmethod
    def _fields(pdu: DeliverSm | DataSm) -> dict[str, str]:
        return {
            "source_ton": str(pdu.source_addr_ton),
            "source_npi": str(pdu.source_addr_npi),
            "dest_ton": str(pdu.dest_addr_ton),
            "data_coding": str(pdu.data_coding),
            "service_type": pdu.service_type,
        }

    def _split(
        self, pdu: DeliverSm | DataSm, sm: bytes
    ) -> tuple[tuple[InformationElement, ...], bytes, bytes]:
        """(UDH IEs, payload, raw UDH) of an MO, with packed GSM-7 unpacked."""
        ies: tuple[InformationElement, ...] = ()
        payload, udh = sm, b""
        if pdu.esm_class & c.ESM_UDHI:
            try:
                ies, payload = split_udh(sm)
                udh = sm[: len(sm) - len(payload)]
            except UdhError as exc:
                log.warning("%s: MO with a malformed UDH, taken as text: %s", self.name, exc)
        if (
            self.config.gsm7_packed
            and alphabet_of(pdu.data_coding, self.config.default_alphabet) == "gsm7"
        ):
            payload = unpack_septets(payload, fill_bits_after(len(udh)))
        return ies, payload, udh

    async def _on_mo(self, pdu: DeliverSm | DataSm, sm: bytes, inbox: Inbox) -> int:
        ies, payload, udh = self._split(pdu, sm)
        concat = find_concat(ies) if ies else sar_concat(pdu.tlvs)
        part = self._part(pdu, payload, udh, concat)
        source = part.source
        fields = self._fields(pdu)
        if concat is None or concat.total <= 1:
            return await self.deliver((part,), inbox, fields)
        try:
            parts = await self.parts.add(part)
        except Exception as exc:
            log.warning(
                "%s: MO part from %s not stored (%s); answering 0x64", self.name, source, exc
            )
            return c.ESME_RX_T_APPN
        if parts is None:
            return c.ESME_ROK  # committed; the rest will follow
        return await self.deliver(parts, inbox, fields)

    def compose(self, parts: Sequence[MoPart], fields: dict[str, str] | None = None) -> InboundSms:
        """Decode the parts (in seq order, some maybe missing) as one message."""
        first = parts[0]
        ies: tuple[InformationElement, ...] = ()
        if first.udh:
            try:
                ies, _ = split_udh(first.udh)
            except UdhError:
                ies = ()
        runs, missing = join_parts(parts)
        texts: list[str] = []
        encoding = "gsm7"
        gap = gap_marker(missing, first.total) if missing else ""
        for run in runs:
            if not run:
                if not texts or texts[-1] != gap:
                    texts.append(gap)
                continue
            text, encoding = decode_mo(
                first.data_coding, run, ies, dcs0=self.config.default_alphabet
            )
            texts.append(text)
        smsc_fields = dict(fields or {"data_coding": str(first.data_coding)})
        if missing:
            smsc_fields["missing_parts"] = ",".join(map(str, missing))
        return InboundSms(
            transport=self.name,
            source=first.source,
            destination=first.destination,
            text="".join(texts).strip() if missing else "".join(texts),
            encoding="ucs2" if encoding == "ucs2" else "gsm7",
            parts=first.total,
            smsc_fields=smsc_fields,
        )

    async def deliver(
        self, parts: Sequence[MoPart], inbox: Inbox, fields: dict[str, str] | None = None
    ) -> int:
        """Decode the parts as one message, hand it to the inbox, then forget the parts."""
        first = parts[0]
        sms = self.compose(parts, fields)
        try:
            await inbox.on_message(sms)
        except Exception as exc:
            log.warning(
                "%s: MO from %s not stored (%s); answering 0x64", self.name, first.source, exc
            )
            return c.ESME_RX_T_APPN
        self.stats.mo += 1
        if first.total > 1:
            try:
                await self.parts.discard(first.key)
            except Exception as exc:  # the parts stay; the expiry sweep may repeat the message
                log.warning("%s: MO parts of %s not removed: %s", self.name, first.key, exc)
        return c.ESME_ROK

    async def deliver_expired(self, inbox: Inbox) -> int:
        """Hand over messages whose parts waited longer than the reassembly timeout."""
        groups = await self.parts.expired(self.name, self.config.mo_reassembly_timeout)
        done = 0
        for parts in groups:
            log.warning(
                "%s: MO from %s timed out with %d of %d parts; delivered with a gap marker",
                self.name,
                parts[0].source,
                len(parts),
                parts[0].total,
            )
            if await self.deliver(parts, inbox) == c.ESME_ROK:
                done += 1
        return done
