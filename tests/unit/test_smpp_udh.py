"""UDH IE walk, concat detection in any IE position, MO reassembly and decoding."""

from __future__ import annotations

import pytest

from bridge.smpp import constants as c
from bridge.smpp.address import address_in, destination_address, source_address
from bridge.smpp.mo import decode_mo
from bridge.smpp.pdu import Tlv
from bridge.smpp.reassembly import Reassembler
from bridge.smpp.udh import Concat, UdhError, concat_udh, find_concat, sar_concat, split_udh


def test_ie_order_single_shift_then_concat8() -> None:
    sm = bytes([0x08, 0x24, 0x01, 0x01, 0x00, 0x03, 0x7A, 0x02, 0x01]) + b"abc"
    ies, payload = split_udh(sm)
    assert [ie.iei for ie in ies] == [0x24, 0x00]
    assert payload == b"abc"
    assert find_concat(ies) == Concat(0x7A, 2, 1)


def test_ie_order_port_then_concat16() -> None:
    sm = bytes([0x0C, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0x08, 0x04, 0x12, 0x34, 0x03, 0x02])
    ies, payload = split_udh(sm + b"xy")
    assert [ie.iei for ie in ies] == [0x05, 0x08]
    assert find_concat(ies) == Concat(0x1234, 3, 2)
    assert payload == b"xy"


@pytest.mark.parametrize("sm", [b"", b"\x05\x00\x03", b"\x03\x00\x05\x01"])
def test_malformed_udh(sm: bytes) -> None:
    with pytest.raises(UdhError):
        split_udh(sm)


def test_concat_udh_bytes() -> None:
    assert concat_udh(0x12A, 3, 1) == bytes.fromhex("0500032a0301")
    assert concat_udh(0x1234, 3, 2, ref16=True) == bytes.fromhex("06080412340302")
    with pytest.raises(ValueError):
        concat_udh(1, 2, 3)


def test_sar_tlvs() -> None:
    tlvs = (
        Tlv(c.TLV_SAR_MSG_REF_NUM, b"\x01\x02"),
        Tlv(c.TLV_SAR_TOTAL_SEGMENTS, b"\x02"),
        Tlv(c.TLV_SAR_SEGMENT_SEQNUM, b"\x02"),
    )
    assert sar_concat(tlvs) == Concat(0x0102, 2, 2)
    assert sar_concat(tlvs[:2]) is None


def test_reassembly_out_of_order_last_first() -> None:
    r = Reassembler()
    key = ("+491", "12345", 7, 3)
    assert r.add(key, 3, b"C", 0, now=0.0) is None
    assert r.add(key, 1, b"A", 0, now=0.1) is None
    assert r.add(("+492", "12345", 7, 3), 2, b"other", 0, now=0.1) is None  # other handset
    done = r.add(key, 2, b"B", 0, now=0.2)
    assert done is not None and done.payload == b"ABC" and done.parts == 3
    r.discard(key)
    assert len(r) == 1


def test_reassembly_expires_old_parts() -> None:
    r = Reassembler(timeout=10.0)
    r.add(("a", "b", 1, 2), 1, b"x", 0, now=0.0)
    r.add(("a", "b", 2, 2), 1, b"y", 0, now=11.0)
    assert len(r) == 1


def test_decode_after_join_keeps_split_pairs() -> None:
    emoji = "😀".encode("utf-16-be")
    assert decode_mo(0x08, emoji[:2] + emoji[2:]) == ("😀", "ucs2")
    assert decode_mo(0x00, b"\x1b" + b"e") == ("€", "gsm7")
    assert decode_mo(0x00, b"\x00\x01\x02") == ("@£$", "gsm7")
    assert decode_mo(0x03, "é".encode("latin-1")) == ("é", "gsm7")
    assert decode_mo(0xF0, b"A") == ("A", "gsm7")


def test_addresses() -> None:
    assert source_address("Bridge") == source_address("Bridge")
    assert (source_address("Bridge").ton, source_address("Bridge").npi) == (5, 0)
    a = source_address("+4915112345678")
    assert (a.ton, a.npi, a.addr) == (1, 1, "4915112345678")
    s = source_address("12345")
    assert (s.ton, s.npi, s.addr) == (0, 1, "12345")
    d = destination_address("+4915112345678")
    assert (d.ton, d.npi, d.addr) == (1, 1, "4915112345678")
    assert address_in(1, "4915112345678") == "+4915112345678"
    assert address_in(0, "12345") == "12345"
    assert address_in(1, "+4915112345678") == "+4915112345678"
    assert address_in(1, "ACME") == "ACME"  # a name with TON 1 stays a name
    assert address_in(5, "\x01AC\x1bME\r\n") == "ACME"  # one line, no control characters


@pytest.mark.parametrize(
    ("data_coding", "octets", "expected"),
    [
        (0x06, "Привет".encode("iso8859_5"), ("Привет", "ucs2")),  # Cyrillic
        (0x07, "שלום".encode("iso8859_8"), ("שלום", "ucs2")),  # Latin/Hebrew
        (0x0A, "こんにちは".encode("iso2022_jp"), ("こんにちは", "ucs2")),
        (0x0E, "안녕".encode("euc_kr"), ("안녕", "ucs2")),
        (0x06, b"Hello", ("Hello", "gsm7")),
        # pictogram, reserved, JIS X 0212: SMPP's own codes, not GSM 03.38's UCS-2 group
        (0x09, b"\x01\x02 ok", (" ok", "gsm7")),
        (0x0B, b"Hi ok", ("Hi ok", "gsm7")),
        (0x0D, b"ok", ("ok", "gsm7")),
    ],
)
def test_smpp_data_codings_below_0x10(
    data_coding: int, octets: bytes, expected: tuple[str, str]
) -> None:
    """Before, 0x09-0x0B were read as UCS-2 (GSM 03.38's bits) and 0x06/0x07 as Latin-1."""
    assert decode_mo(data_coding, octets) == expected


@pytest.mark.parametrize(
    ("octets", "expected"),
    [
        # GSM-7 septets marked IA5 (node-smpp, some SMSCs): '$' 0x02, '@' 0x00, '_' 0x11,
        # '€' ESC 0x65. Before, read as ASCII: the controls were dropped with the text.
        (b"Costs 5\x02 \x00 shop\x11x, 10\x1be", "Costs 5$ @ shop_x, 10€"),
        (b"a\x00b\r\nc", "a@b\r\nc"),
        # ASCII text, line breaks and all, stays ASCII: '$' 0x24, '@' 0x40, '_' 0x5F
        (b"Costs 5$ @ shop_x\r\nok", "Costs 5$ @ shop_x\r\nok"),
    ],
)
def test_ia5_data_coding_with_gsm7_octets(octets: bytes, expected: str) -> None:
    assert decode_mo(0x01, octets) == (expected, "gsm7")
