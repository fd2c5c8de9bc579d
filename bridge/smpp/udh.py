"""User Data Header: walk its information elements, find concatenation info, build concat UDHs.

Pure functions. The UDH is `UDHL, (IEI, IEDL, data)*` at the start of short_message when
esm_class has UDHI (0x40). Concatenation is IE 0x00 (8-bit reference) or IE 0x08 (16-bit
reference), anywhere among the IEs; SAR TLVs carry the same facts without a UDH.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.errors import InputError
from bridge.smpp import constants as c
from bridge.smpp.pdu import Tlvs, find_tlv

IE_CONCAT_8BIT = 0x00
IE_CONCAT_16BIT = 0x08


class UdhError(InputError, ValueError):
    """The UDH length or an IE length runs past the data."""


@dataclass(frozen=True, slots=True)
class InformationElement:
    """One UDH IE: identifier and data."""

    iei: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Concat:
    """Which part of which concatenated message this is (seq counts from 1)."""

    ref: int
    total: int
    seq: int


def split_udh(short_message: bytes) -> tuple[tuple[InformationElement, ...], bytes]:
    """(IEs, payload) of a short_message that starts with a UDH; raises UdhError if malformed."""
    if not short_message:
        raise UdhError("UDHI set but short_message is empty")
    udhl = short_message[0]
    end = 1 + udhl
    if end > len(short_message):
        raise UdhError(f"UDH length {udhl} exceeds short_message of {len(short_message)} octets")
    ies: list[InformationElement] = []
    pos = 1
    while pos < end:
        if pos + 2 > end:
            raise UdhError("truncated IE header in UDH")
        iei, iedl = short_message[pos], short_message[pos + 1]
        pos += 2
        if pos + iedl > end:
            raise UdhError(f"IE 0x{iei:02X} length {iedl} runs past the UDH")
        ies.append(InformationElement(iei, short_message[pos : pos + iedl]))
        pos += iedl
    return tuple(ies), short_message[end:]


def find_concat(ies: tuple[InformationElement, ...]) -> Concat | None:
    """The concatenation IE among `ies` (8- or 16-bit ref), or None; invalid ones are ignored."""
    for ie in ies:
        if ie.iei == IE_CONCAT_8BIT and len(ie.data) == 3:
            ref, total, seq = ie.data
        elif ie.iei == IE_CONCAT_16BIT and len(ie.data) == 4:
            ref, total, seq = (ie.data[0] << 8) | ie.data[1], ie.data[2], ie.data[3]
        else:
            continue
        if total >= 1 and 1 <= seq <= total:
            return Concat(ref, total, seq)
    return None


def sar_concat(tlvs: Tlvs) -> Concat | None:
    """Concatenation info from the sar_* TLVs, or None when they are absent or invalid."""
    ref_b = find_tlv(tlvs, c.TLV_SAR_MSG_REF_NUM)
    total_b = find_tlv(tlvs, c.TLV_SAR_TOTAL_SEGMENTS)
    seq_b = find_tlv(tlvs, c.TLV_SAR_SEGMENT_SEQNUM)
    if not ref_b or not total_b or not seq_b:
        return None
    ref = int.from_bytes(ref_b, "big")
    total, seq = total_b[-1], seq_b[-1]
    if total >= 1 and 1 <= seq <= total:
        return Concat(ref, total, seq)
    return None


def udh_concat_problem(ies: tuple[InformationElement, ...]) -> str | None:
    """Why a concatenation IE among `ies` cannot be used (for a part a client submits), or
    None. `find_concat` passes over such an IE, which suits what a network delivers; a
    client's part with one would reach the handset as a broken message."""
    for ie in ies:
        size = {IE_CONCAT_8BIT: 3, IE_CONCAT_16BIT: 4}.get(ie.iei)
        if size is None:
            continue
        if len(ie.data) != size:
            return f"concatenation IE 0x{ie.iei:02X} has {len(ie.data)} octets, not {size}"
        total, seq = ie.data[-2], ie.data[-1]
        if not 1 <= seq <= total:
            return f"concatenation IE says part {seq} of {total}"
    return None


def sar_problem(tlvs: Tlvs) -> str | None:
    """Why the sar_* TLVs of a submitted part cannot be used, or None (also when absent)."""
    tags = (c.TLV_SAR_MSG_REF_NUM, c.TLV_SAR_TOTAL_SEGMENTS, c.TLV_SAR_SEGMENT_SEQNUM)
    found = [find_tlv(tlvs, tag) for tag in tags]
    if all(value is None for value in found):
        return None
    values = [value for value in found if value is not None]
    if len(values) != len(tags):
        return "sar_msg_ref_num, sar_total_segments and sar_segment_seqnum go together"
    for tag, value, size in zip(tags, values, (2, 1, 1), strict=True):
        if len(value) != size:
            return f"TLV 0x{tag:04X} has {len(value)} octets, not {size}"
    total, seq = values[1][0], values[2][0]
    if not 1 <= seq <= total:
        return f"sar_segment_seqnum {seq} of sar_total_segments {total}"
    return None


def concat_udh(ref: int, total: int, seq: int, *, ref16: bool = False) -> bytes:
    """`05 00 03 ref total seq`, or `06 08 04 refHi refLo total seq` with `ref16`."""
    if not 1 <= seq <= total <= 255:
        raise ValueError(f"part {seq} of {total} is not a valid concatenation")
    if ref16:
        return bytes((0x06, IE_CONCAT_16BIT, 0x04, (ref >> 8) & 0xFF, ref & 0xFF, total, seq))
    return bytes((0x05, IE_CONCAT_8BIT, 0x03, ref & 0xFF, total, seq))
