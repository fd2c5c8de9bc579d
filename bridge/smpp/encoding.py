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
from bridge.text.gsm7 import encode_gsm7
from bridge.text.segment import split_ucs2_text
from bridge.text.sms import CR, chunk_septets
from bridge.values import Encoding

Alphabet = Literal["gsm7", "latin1", "ascii"]
Concatenation = Literal["udh8", "udh16", "sar", "payload"]

MAX_PARTS: Final = 255
MAX_USER_DATA: Final = 140  # octets of one SMS's user data (UDH included)
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


def ends_on_octet(septets: int, fill_bits: int = 0) -> bool:
    """Whether `septets` packed after `fill_bits` end exactly on an octet boundary."""
    return (fill_bits + 7 * septets) % 8 == 0


def pack_septets(septets: bytes, fill_bits: int = 0, room: int | None = None) -> bytes:
    """GSM 03.38 packing, least significant bit first, after `fill_bits` zero bits.

    TS 23.038 6.1.2.3.1: the receiver counts the septets from the octets and takes a
    last CR that ends on an octet boundary for padding. So when the last octet has 7
    spare bits they hold CR, not zeros (seven zero bits would be one more septet, '@',
    at the end of the text); and a text whose wanted last CR ends on an octet boundary
    gets another CR (and a padding bit 0), which the receiver drops, when that octet
    more fits in `room` octets (None: no limit). When it does not (a full single SMS or
    last part ending in CR), the final CR is left to be dropped: at the end of a message
    it shows as nothing."""
    if (
        septets
        and septets[-1] == CR
        and ends_on_octet(len(septets), fill_bits)
        and (room is None or (fill_bits + 7 * len(septets)) // 8 + 1 <= room)
    ):
        septets += bytes((CR,))
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
    """The septets in packed `data` (TS 23.038 6.1.2.3.1). When the octets hold a whole
    number of septets, a last CR or '@' is taken for the padding of 7 spare bits (CR by
    TS 23.038, zeros by some senders) and dropped; when two CRs end one bit before the
    last octet does, the second is the one a sender adds to keep a wanted last CR that
    would end on an octet boundary, and is dropped too (CR CR means CR)."""
    value = int.from_bytes(data, "little") >> fill_bits
    count = (len(data) * 8 - fill_bits) // 7
    spare = (len(data) * 8 - fill_bits) % 7
    out = bytes((value >> (7 * i)) & 0x7F for i in range(count))
    if count and spare == 0 and out[-1] in (0, CR):
        out = out[:-1]  # 7 spare bits at the end are padding, not text
    elif count >= 2 and spare == 1 and out[-2:] == bytes((CR, CR)):
        out = out[:-1]  # the CR added to a wanted last CR on an octet boundary
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
    room = min(MAX_USER_DATA, opts.max_length)  # octets of one SMS's user data
    if units <= min(single, _units_in(opts.max_length, kind, packed, 0)):
        return (MtPart(pack_septets(data, 0, room) if packed else data, 0, dc),)
    udh_len = {"udh8": 6, "udh16": 7}.get(opts.concat, 0)
    # the fill bits before a part's septets on the air interface (SAR: the SMSC adds a UDH8)
    fill = fill_bits_after(udh_len or 6)
    per = min(
        multi - (1 if opts.concat == "udh16" else 0),
        _units_in(opts.max_length, kind, packed, udh_len),
    )
    if per < 1:
        raise ValueError(f"max_length {opts.max_length} leaves no room for text")
    if kind == "ucs2":
        payloads = [p.encode("utf-16-be") for p in split_ucs2_text(text, per)]
    elif kind == "septets":
        payloads = chunk_septets(data, per, fill)
    else:
        payloads = [data[i : i + per] for i in range(0, len(data), per)]
    total = len(payloads)
    if total > MAX_PARTS:
        raise ValueError(f"text needs {total} parts; at most {MAX_PARTS} can be concatenated")
    parts: list[MtPart] = []
    for seq, payload in enumerate(payloads, 1):
        if opts.concat == "sar":
            body = pack_septets(payload, 0, room - 6) if packed else payload
            tlvs = (
                Tlv(c.TLV_SAR_MSG_REF_NUM, (ref & 0xFFFF).to_bytes(2, "big")),
                Tlv(c.TLV_SAR_TOTAL_SEGMENTS, bytes((total,))),
                Tlv(c.TLV_SAR_SEGMENT_SEQNUM, bytes((seq,))),
            )
            parts.append(MtPart(body, 0, dc, tlvs))
            continue
        udh = concat_udh(ref, total, seq, ref16=opts.concat == "udh16")
        body = (
            pack_septets(payload, fill_bits_after(len(udh)), room - len(udh)) if packed else payload
        )
        parts.append(MtPart(udh + body, c.ESM_UDHI, dc))
    return tuple(parts)
