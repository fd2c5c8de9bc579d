"""SMPP 3.4 PDU codec: bytes <-> the PDU dataclasses of `pdu_types` (re-exported here).

Wire format: a 16-octet header (command_length, command_id, command_status,
sequence_number, all big-endian uint32), then the body: C-octet strings, single octets
and, at the end, TLVs (tag uint16, length uint16, value). `short_message` is raw bytes
and may contain 0x00 ('@' in GSM-7), so it is never treated as a C-string. Unknown
TLVs are kept; unknown command ids decode to `UnknownPdu` instead of failing.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from bridge.errors import InputError
from bridge.smpp import constants as c
from bridge.smpp.pdu_types import (  # re-exported: import PDUs from here
    AlertNotification,
    Bind,
    BindResp,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    EncodedSubmitSm,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Tlvs,
    Unbind,
    UnbindResp,
    UnknownPdu,
    _HeaderOnly,
    _MessageIdResp,
    _ShortMessage,
    find_tlv,
    is_response,
)

HEADER: Final = struct.Struct(">IIII")
HEADER_SIZE: Final = 16
MAX_PDU_SIZE: Final = 70_000  # 64 KiB message_payload plus the rest; anything bigger is junk


class PduError(InputError):
    """A PDU could not be decoded; `status` is the command_status to answer with."""

    def __init__(self, reason: str, status: int = c.ESME_RINVMSGLEN) -> None:
        super().__init__(reason)
        self.status = status


# --- encoding -----------------------------------------------------------------------------------


def _cstr(text: str) -> bytes:
    return text.encode("latin-1") + b"\0"


def _tlv_bytes(tlvs: Tlvs) -> bytes:
    if not tlvs:
        return b""
    return b"".join(struct.pack(">HH", t.tag, len(t.value)) + t.value for t in tlvs)


def _body_bind(p: Bind) -> bytes:
    return b"".join(
        (
            _cstr(p.system_id),
            _cstr(p.password),
            _cstr(p.system_type),
            bytes((p.interface_version, p.addr_ton, p.addr_npi)),
            _cstr(p.address_range),
        )
    )


def _body_bind_resp(p: BindResp) -> bytes:
    return _cstr(p.system_id) + _tlv_bytes(p.tlvs)


def _check_length(sm: bytes) -> None:
    if len(sm) > 254:
        raise ValueError(f"short_message is {len(sm)} octets; at most 254 fit (use TLV 0x0424)")


def _body_short_message(p: _ShortMessage) -> bytes:
    """submit_sm and deliver_sm share their layout: the template's, for one part."""
    template = SubmitSmTemplate.of(
        p.source_addr,
        p.destination_addr,
        service_type=p.service_type,
        source_addr_ton=p.source_addr_ton,
        source_addr_npi=p.source_addr_npi,
        dest_addr_ton=p.dest_addr_ton,
        dest_addr_npi=p.dest_addr_npi,
        protocol_id=p.protocol_id,
        priority_flag=p.priority_flag,
        schedule_delivery_time=p.schedule_delivery_time,
        validity_period=p.validity_period,
        registered_delivery=p.registered_delivery,
        replace_if_present_flag=p.replace_if_present_flag,
        sm_default_msg_id=p.sm_default_msg_id,
    )
    return template.body(p.esm_class, p.data_coding, p.short_message, p.tlvs)


@dataclass(frozen=True, slots=True)
class SubmitSmTemplate:
    """The submit_sm fields all parts of one SMS share, encoded once; `body` adds a part's.

    The one place the short-message layout is written: `encode` makes every submit_sm and
    deliver_sm body with it, and the transport encodes each part of an SMS with one
    template instead of building a `SubmitSm` per part.
    """

    head: bytes  # service_type .. destination_addr
    middle: bytes  # protocol_id .. replace_if_present_flag (after esm_class)
    sm_default_msg_id: int = 0

    @classmethod
    def of(
        cls,
        source_addr: str,
        destination_addr: str,
        *,
        service_type: str = "",
        source_addr_ton: int = 0,
        source_addr_npi: int = 0,
        dest_addr_ton: int = 0,
        dest_addr_npi: int = 0,
        protocol_id: int = 0,
        priority_flag: int = 0,
        schedule_delivery_time: str = "",
        validity_period: str = "",
        registered_delivery: int = 0,
        replace_if_present_flag: int = 0,
        sm_default_msg_id: int = 0,
    ) -> SubmitSmTemplate:
        """Raises UnicodeEncodeError or ValueError as `encode` would for these fields."""
        try:
            head = b"%b\0%c%c%b\0%c%c%b\0" % (
                service_type.encode("latin-1"),
                source_addr_ton,
                source_addr_npi,
                source_addr.encode("latin-1"),
                dest_addr_ton,
                dest_addr_npi,
                destination_addr.encode("latin-1"),
            )
            middle = b"%c%c%b\0%b\0%c%c" % (
                protocol_id,
                priority_flag,
                schedule_delivery_time.encode("latin-1"),
                validity_period.encode("latin-1"),
                registered_delivery,
                replace_if_present_flag,
            )
        except OverflowError:
            raise ValueError("bytes must be in range(0, 256)") from None
        if not 0 <= sm_default_msg_id <= 0xFF:
            raise ValueError("bytes must be in range(0, 256)")
        return cls(head, middle, sm_default_msg_id)

    def body(self, esm_class: int, data_coding: int, short_message: bytes, tlvs: Tlvs) -> bytes:
        """One part's submit_sm body; ValueError when its short_message does not fit."""
        _check_length(short_message)
        try:
            return b"%b%c%b%c%c%c%b%b" % (
                self.head,
                esm_class,
                self.middle,
                data_coding,
                self.sm_default_msg_id,
                len(short_message),
                short_message,
                _tlv_bytes(tlvs) if tlvs else b"",
            )
        except OverflowError:
            raise ValueError("bytes must be in range(0, 256)") from None


def _body_data_sm(p: DataSm) -> bytes:
    return b"".join(
        (
            _cstr(p.service_type),
            bytes((p.source_addr_ton, p.source_addr_npi)),
            _cstr(p.source_addr),
            bytes((p.dest_addr_ton, p.dest_addr_npi)),
            _cstr(p.destination_addr),
            bytes((p.esm_class, p.registered_delivery, p.data_coding)),
            _tlv_bytes(p.tlvs),
        )
    )


def _body_message_id_resp(p: _MessageIdResp) -> bytes:
    if not p.tlvs:  # the usual answer: the message id alone (empty in a deliver_sm_resp)
        return p.message_id.encode("latin-1") + b"\0" if p.message_id else b"\0"
    return _cstr(p.message_id) + _tlv_bytes(p.tlvs)


def _body_empty(p: _HeaderOnly) -> bytes:
    return b""


def _body_alert(p: AlertNotification) -> bytes:
    return b"".join(
        (
            bytes((p.source_addr_ton, p.source_addr_npi)),
            _cstr(p.source_addr),
            bytes((p.esme_addr_ton, p.esme_addr_npi)),
            _cstr(p.esme_addr),
            _tlv_bytes(p.tlvs),
        )
    )


def _body_as_given(p: UnknownPdu | EncodedSubmitSm) -> bytes:
    return p.body


_ENCODERS: Final[dict[type, Callable[[object], bytes]]] = {
    Bind: _body_bind,  # type: ignore[dict-item]
    BindResp: _body_bind_resp,  # type: ignore[dict-item]
    SubmitSm: _body_short_message,  # type: ignore[dict-item]
    DeliverSm: _body_short_message,  # type: ignore[dict-item]
    DataSm: _body_data_sm,  # type: ignore[dict-item]
    SubmitSmResp: _body_message_id_resp,  # type: ignore[dict-item]
    DeliverSmResp: _body_message_id_resp,  # type: ignore[dict-item]
    DataSmResp: _body_message_id_resp,  # type: ignore[dict-item]
    EnquireLink: _body_empty,  # type: ignore[dict-item]
    EnquireLinkResp: _body_empty,  # type: ignore[dict-item]
    Unbind: _body_empty,  # type: ignore[dict-item]
    UnbindResp: _body_empty,  # type: ignore[dict-item]
    GenericNack: _body_empty,  # type: ignore[dict-item]
    AlertNotification: _body_alert,  # type: ignore[dict-item]
    UnknownPdu: _body_as_given,  # type: ignore[dict-item]
    EncodedSubmitSm: _body_as_given,  # type: ignore[dict-item]
}


def encode(pdu: Pdu, sequence: int | None = None) -> bytes:
    """The complete PDU on the wire; `sequence` overrides `pdu.sequence` when given."""
    body = _ENCODERS[type(pdu)](pdu)
    seq = pdu.sequence if sequence is None else sequence
    return HEADER.pack(HEADER_SIZE + len(body), pdu.command_id, pdu.status, seq) + body


# --- decoding -----------------------------------------------------------------------------------

_TAG_LENGTH: Final = struct.Struct(">HH")


def _tlvs(body: bytes, pos: int) -> Tlvs:
    """The TLVs from `pos` to the end of `body` (a truncated last one is kept short)."""
    end = len(body)
    out: list[Tlv] = []
    unpack = _TAG_LENGTH.unpack_from
    while pos + 4 <= end:
        tag, length = unpack(body, pos)
        pos += 4
        out.append(Tlv(tag, body[pos : pos + length]))
        pos += length
    return tuple(out)


class _Reader:
    """A cursor over one PDU body."""

    __slots__ = ("body", "pos")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.pos = 0

    def cstr(self) -> str:
        body, pos = self.body, self.pos
        end = body.find(b"\0", pos)
        if end < 0:  # tolerate a missing terminator at the very end of a body
            if pos >= len(body):
                return ""
            end = len(body)
            self.pos = end
        else:
            self.pos = end + 1
        return body[pos:end].decode("latin-1")

    def octet(self) -> int:
        pos = self.pos
        if pos >= len(self.body):
            raise PduError(f"body ends at octet {pos}, a mandatory field is missing")
        self.pos = pos + 1
        return self.body[pos]

    def take(self, n: int) -> bytes:
        pos = self.pos
        if pos + n > len(self.body):
            raise PduError(f"short_message of {n} octets runs past the end of the body")
        self.pos = pos + n
        return self.body[pos : pos + n]

    def tlvs(self) -> Tlvs:
        tlvs = _tlvs(self.body, self.pos)
        self.pos = len(self.body)
        return tlvs


def _decode_short_message(r: _Reader) -> dict[str, object]:
    f: dict[str, object] = {"service_type": r.cstr()}
    f["source_addr_ton"] = r.octet()
    f["source_addr_npi"] = r.octet()
    f["source_addr"] = r.cstr()
    f["dest_addr_ton"] = r.octet()
    f["dest_addr_npi"] = r.octet()
    f["destination_addr"] = r.cstr()
    f["esm_class"] = r.octet()
    f["protocol_id"] = r.octet()
    f["priority_flag"] = r.octet()
    f["schedule_delivery_time"] = r.cstr()
    f["validity_period"] = r.cstr()
    f["registered_delivery"] = r.octet()
    f["replace_if_present_flag"] = r.octet()
    f["data_coding"] = r.octet()
    f["sm_default_msg_id"] = r.octet()
    f["short_message"] = r.take(r.octet())
    f["tlvs"] = r.tlvs()
    return f


def _short_message_fast(
    cls: type[SubmitSm] | type[DeliverSm], sequence: int, status: int, body: bytes
) -> SubmitSm | DeliverSm | None:
    """submit_sm / deliver_sm in one pass over a well-formed body; None for anything odd
    (a missing terminator or field, a short_message past the end: `_Reader` decides)."""
    find = body.find
    try:
        e1 = find(b"\0")
        e2 = find(b"\0", e1 + 3)
        e3 = find(b"\0", e2 + 3)
        e4 = find(b"\0", e3 + 4)
        e5 = find(b"\0", e4 + 1)
        if e1 < 0 or e2 < 0 or e3 < 0 or e4 < 0 or e5 < 0:
            return None
        length = body[e5 + 5]
        start = e5 + 6
        if start + length > len(body):
            return None
        tlvs = _tlvs(body, start + length) if start + length < len(body) else ()
        return cls(
            sequence,
            body[e1 + 3 : e2].decode("latin-1"),
            body[e2 + 3 : e3].decode("latin-1"),
            body[start : start + length],
            body[:e1].decode("latin-1"),
            body[e1 + 1],
            body[e1 + 2],
            body[e2 + 1],
            body[e2 + 2],
            body[e3 + 1],
            body[e3 + 2],
            body[e3 + 3],
            body[e3 + 4 : e4].decode("latin-1"),
            body[e4 + 1 : e5].decode("latin-1"),
            body[e5 + 1],
            body[e5 + 2],
            body[e5 + 3],
            body[e5 + 4],
            tlvs,
            status,
        )
    except IndexError:
        return None


def decode_body(command_id: int, status: int, sequence: int, body: bytes) -> Pdu:
    """Decode one PDU from its header fields and body; raises `PduError` on a bad body."""
    if command_id == c.SUBMIT_SM_RESP or command_id == c.DELIVER_SM_RESP:
        cls = SubmitSmResp if command_id == c.SUBMIT_SM_RESP else DeliverSmResp
        end = body.find(b"\0")
        if end >= 0 and end + 1 == len(body):  # the usual body: the message id alone
            return cls(sequence, status, body[:end].decode("latin-1"))
        r = _Reader(body)
        return cls(sequence, status, r.cstr(), r.tlvs())
    if command_id == c.SUBMIT_SM or command_id == c.DELIVER_SM:
        sm_cls = SubmitSm if command_id == c.SUBMIT_SM else DeliverSm
        fast = _short_message_fast(sm_cls, sequence, status, body)
        if fast is not None:
            return fast
        return sm_cls(sequence=sequence, status=status, **_decode_short_message(_Reader(body)))  # type: ignore[arg-type]
    r = _Reader(body)
    if command_id == c.ENQUIRE_LINK:
        return EnquireLink(sequence, status)
    if command_id == c.ENQUIRE_LINK_RESP:
        return EnquireLinkResp(sequence, status)
    if command_id == c.DATA_SM:
        return DataSm(
            sequence=sequence,
            status=status,
            service_type=r.cstr(),
            source_addr_ton=r.octet(),
            source_addr_npi=r.octet(),
            source_addr=r.cstr(),
            dest_addr_ton=r.octet(),
            dest_addr_npi=r.octet(),
            destination_addr=r.cstr(),
            esm_class=r.octet(),
            registered_delivery=r.octet(),
            data_coding=r.octet(),
            tlvs=r.tlvs(),
        )
    if command_id == c.DATA_SM_RESP:
        return DataSmResp(sequence, status, r.cstr(), r.tlvs())
    if command_id in c.BIND_COMMANDS:
        return Bind(
            command_id=command_id,
            sequence=sequence,
            status=status,
            system_id=r.cstr(),
            password=r.cstr(),
            system_type=r.cstr(),
            interface_version=r.octet(),
            addr_ton=r.octet(),
            addr_npi=r.octet(),
            address_range=r.cstr(),
        )
    if command_id & ~c.RESP_BIT in c.BIND_COMMANDS and command_id & c.RESP_BIT:
        return BindResp(command_id, sequence, status, r.cstr(), r.tlvs())
    if command_id == c.UNBIND:
        return Unbind(sequence, status)
    if command_id == c.UNBIND_RESP:
        return UnbindResp(sequence, status)
    if command_id == c.GENERIC_NACK:
        return GenericNack(sequence, status)
    if command_id == c.ALERT_NOTIFICATION:
        return AlertNotification(
            sequence=sequence,
            status=status,
            source_addr_ton=r.octet(),
            source_addr_npi=r.octet(),
            source_addr=r.cstr(),
            esme_addr_ton=r.octet(),
            esme_addr_npi=r.octet(),
            esme_addr=r.cstr(),
            tlvs=r.tlvs(),
        )
    return UnknownPdu(command_id, sequence, status, body)


def decode_header(header: bytes) -> tuple[int, int, int, int]:
    """(command_length, command_id, command_status, sequence); checks the length is sane."""
    length, command_id, status, sequence = HEADER.unpack(header)
    if length < HEADER_SIZE or length > MAX_PDU_SIZE:
        raise PduError(f"command_length {length} is out of range", c.ESME_RINVCMDLEN)
    return length, command_id, status, sequence


def decode(data: bytes) -> Pdu:
    """Decode one complete PDU (header and body); the length must match command_length."""
    if len(data) < HEADER_SIZE:
        raise PduError(f"{len(data)} octets are too short for a PDU header", c.ESME_RINVCMDLEN)
    length, command_id, status, sequence = decode_header(data[:HEADER_SIZE])
    if length != len(data):
        raise PduError(f"command_length {length} but {len(data)} octets", c.ESME_RINVCMDLEN)
    return decode_body(command_id, status, sequence, data[HEADER_SIZE:])


__all__ = [
    "HEADER",
    "HEADER_SIZE",
    "MAX_PDU_SIZE",
    "AlertNotification",
    "Bind",
    "BindResp",
    "DataSm",
    "DataSmResp",
    "DeliverSm",
    "DeliverSmResp",
    "EncodedSubmitSm",
    "EnquireLink",
    "EnquireLinkResp",
    "GenericNack",
    "Pdu",
    "PduError",
    "SubmitSm",
    "SubmitSmResp",
    "SubmitSmTemplate",
    "Tlv",
    "Tlvs",
    "Unbind",
    "UnbindResp",
    "UnknownPdu",
    "decode",
    "decode_body",
    "decode_header",
    "encode",
    "find_tlv",
    "is_response",
]
