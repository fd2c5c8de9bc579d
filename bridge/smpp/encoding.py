"""MT encoding per SMSC: text -> submit_sm parts (alphabet, packing, concatenation, size cap).

Pure. What data_coding 0 means differs between SMSCs (GSM-7, Latin-1 or IA5/ASCII), some
want GSM-7 packed (8 septets in 7 octets), and concatenation is done with a UDH (8- or
16-bit reference), SAR TLVs, or one `message_payload` TLV. `plan_parts` applies those
per-SMSC options and the `short_message` size cap. ESC pairs and UTF-16 surrogate pairs
are never split across parts. Flash SMS (class 0) uses an explicit data_coding (0x10
GSM-7, 0x18 UCS-2), which means GSM-7 whatever data_coding 0 means on the SMSC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from bridge.smpp import constants as c
from bridge.smpp.pdu_types import Tlv
from bridge.smpp.udh import concat_udh
from bridge.text.gsm7 import ESC, encode_gsm7
from bridge.text.segment import split_ucs2_text
from bridge.values import Encoding

Alphabet = Literal["gsm7", "latin1", "ascii"]
Concatenation = Literal["udh8", "udh16", "sar", "payload"]

MAX_PARTS: Final = 255
# (single message, one part of several) in units: septets, octets or UTF-16 units
_LIMITS: Final[dict[str, tuple[int, int]]] = {
    "septets": (160, 153),
    "octets": (140, 134),
    "ucs2": (70, 67),
}


@dataclass(frozen=True, slots=True)
class EncodingOptions:
    """How one SMSC wants MT text encoded (all of these are SMSC settings)."""

    default_alphabet: Alphabet = "gsm7"  # what data_coding 0x00 means on this SMSC
    packed: bool = False  # GSM-7 packed 8-in-7 instead of one septet per octet
    concat: Concatenation = "udh8"
    max_length: int = 254  # largest short_message the SMSC accepts, in octets


@dataclass(frozen=True, slots=True)
class MtPart:
    """The encoding-dependent fields of one submit_sm."""

    short_message: bytes
    esm_class: int
    data_coding: int
    tlvs: tuple[Tlv, ...] = ()


CR: Final = 0x0D


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """GSM 03.38 packing, least significant bit first, after `fill_bits` zero bits.

    When the last octet has 7 spare bits they hold CR, not zeros (TS 23.038 6.1.2.3.1):
    the SMSC counts the septets from the octets, and seven zero bits would be one more
    septet, '@', at the end of the text."""
    acc, nbits, out = 0, fill_bits, bytearray()
    for s in septets:
        acc |= (s & 0x7F) << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits == 1 and septets:
        acc |= CR << 1
    if nbits > 0:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack_septets(data: bytes, fill_bits: int = 0) -> bytes:
    """The septets in packed `data`; when the octets hold a whole number of septets, a
    last CR or '@' is taken for the padding of 7 spare bits (CR by TS 23.038, zeros by
    some senders) and dropped."""
    value = int.from_bytes(data, "little") >> fill_bits
    count = (len(data) * 8 - fill_bits) // 7
    out = bytes((value >> (7 * i)) & 0x7F for i in range(count))
    if count and (len(data) * 8 - fill_bits) % 7 == 0 and out[-1] in (0, CR):
        out = out[:-1]  # 7 spare bits at the end are padding, not text
    return out


def fill_bits_after(udh_octets: int) -> int:
    """Zero bits that align the first septet after a UDH of `udh_octets` octets."""
    return (7 - (udh_octets * 8) % 7) % 7


def _units_in(octets: int, kind: str, packed: bool, udh: int) -> int:
    """How many units fit in `octets` of short_message after a `udh`-octet UDH."""
    room = octets - udh
    if kind == "ucs2":
        return room // 2
    if kind == "septets" and packed:
        return (room * 8 - fill_bits_after(udh)) // 7 if udh else room * 8 // 7
    return room


def _chunks(data: bytes, per: int, kind: str) -> list[bytes]:
    out: list[bytes] = []
    start = 0
    while start < len(data):
        end = min(start + per, len(data))
        if kind == "septets" and end < len(data) and data[end - 1] == ESC:
            end -= 1  # never orphan an ESC: the extension character goes with it
        out.append(data[start:end])
        start = end
    return out


def _alphabet(text: str, encoding: Encoding, opts: EncodingOptions, flash: bool) -> tuple[str, int]:
    """(unit kind, data_coding) for this text on this SMSC."""
    if encoding == "ucs2":
        return "ucs2", 0x18 if flash else 0x08
    if flash:
        return "septets", 0x10
    if opts.default_alphabet == "gsm7":
        return "septets", 0x00
    codec = "latin-1" if opts.default_alphabet == "latin1" else "ascii"
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return "ucs2", 0x08  # GSM-7 text the SMSC's default alphabet cannot carry
    return "octets", 0x00


def _encode(text: str, kind: str, opts: EncodingOptions) -> bytes:
    if kind == "septets":
        return encode_gsm7(text)
    if kind == "ucs2":
        return text.encode("utf-16-be")
    return text.encode("latin-1" if opts.default_alphabet == "latin1" else "ascii")


def plan_parts(
    text: str, encoding: Encoding, opts: EncodingOptions, *, ref: int = 0, flash: bool = False
) -> tuple[MtPart, ...]:
    """The submit_sm parts for `text`; ValueError when it cannot be sent this way."""
    kind, dc = _alphabet(text, encoding, opts, flash)
    data = _encode(text, kind, opts)
    packed = opts.packed and kind == "septets"
    if opts.concat == "payload":
        body = pack_septets(data) if packed else data
        return (MtPart(b"", 0, dc, (Tlv(c.TLV_MESSAGE_PAYLOAD, body),)),)
    single, multi = _LIMITS[kind]
    units = len(data) // 2 if kind == "ucs2" else len(data)
    if units <= min(single, _units_in(opts.max_length, kind, packed, 0)):
        return (MtPart(pack_septets(data) if packed else data, 0, dc),)
    udh_len = {"udh8": 6, "udh16": 7}.get(opts.concat, 0)
    per = min(
        multi - (1 if opts.concat == "udh16" else 0),
        _units_in(opts.max_length, kind, packed, udh_len),
    )
    if per < 1:
        raise ValueError(f"max_length {opts.max_length} leaves no room for text")
    if kind == "ucs2":
        payloads = [p.encode("utf-16-be") for p in split_ucs2_text(text, per)]
    else:
        payloads = _chunks(data, per, kind)
    total = len(payloads)
    if total > MAX_PARTS:
        raise ValueError(f"text needs {total} parts; at most {MAX_PARTS} can be concatenated")
    parts: list[MtPart] = []
    for seq, payload in enumerate(payloads, 1):
        if opts.concat == "sar":
            body = pack_septets(payload) if packed else payload
            tlvs = (
                Tlv(c.TLV_SAR_MSG_REF_NUM, (ref & 0xFFFF).to_bytes(2, "big")),
                Tlv(c.TLV_SAR_TOTAL_SEGMENTS, bytes((total,))),
                Tlv(c.TLV_SAR_SEGMENT_SEQNUM, bytes((seq,))),
            )
            parts.append(MtPart(body, 0, dc, tlvs))
            continue
        udh = concat_udh(ref, total, seq, ref16=opts.concat == "udh16")
        body = pack_septets(payload, fill_bits_after(len(udh))) if packed else payload
        parts.append(MtPart(udh + body, c.ESM_UDHI, dc))
    return tuple(parts)
