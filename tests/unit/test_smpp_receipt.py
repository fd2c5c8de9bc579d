"""Receipt detection and parsing: TLVs first, tolerant text, never an exception."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.smpp import constants as c
from bridge.smpp.pdu import DeliverSm, Tlv
from bridge.smpp.receipt import (
    is_receipt,
    marked_receipt,
    parse_date,
    parse_receipt,
    text_receipt,
)
from bridge.smpp.stats import BindStats
from bridge.transports.base import MoPartStore
from bridge.transports.smpp_config import SmppConfig
from bridge.transports.smpp_incoming import IncomingHandler
from bridge.values import ReceiptState

STD = (
    b"id:1000 sub:001 dlvrd:001 submit date:2611051200 done date:2611051201 "
    b"stat:DELIVRD err:000 text:Hello"
)
TLVS = (Tlv(c.TLV_RECEIPTED_MESSAGE_ID, b"abc\x00"), Tlv(c.TLV_MESSAGE_STATE, b"\x05"))


def parse(sm: bytes, esm_class: int = 0x04, tlvs: tuple[Tlv, ...] = ()):  # type: ignore[no-untyped-def]
    return parse_receipt("t", esm_class=esm_class, tlvs=tlvs, short_message=sm)


def test_standard_text() -> None:
    r = parse(STD)
    assert r is not None
    assert (r.message_id, r.state, r.error_code) == ("1000", ReceiptState.DELIVERED, "000")
    assert r.done_at == datetime(2026, 11, 5, 12, 1, tzinfo=UTC)
    assert r.transport == "t"
    assert r.raw.startswith("id:1000")


def test_tlv_only() -> None:
    r = parse(b"", esm_class=0, tlvs=TLVS)
    assert r is not None
    assert (r.message_id, r.state) == ("abc", ReceiptState.UNDELIVERABLE)


def test_tlvs_win_over_text() -> None:
    r = parse(STD, tlvs=TLVS)
    assert r is not None
    assert (r.message_id, r.state) == ("abc", ReceiptState.UNDELIVERABLE)
    assert r.error_code == "000"


def test_text_only_without_esm_class() -> None:
    r = parse(STD, esm_class=0)
    assert r is not None and r.state is ReceiptState.DELIVERED


def test_twelve_digit_dates_hex_id_capital_text_alnum_err() -> None:
    sm = (
        b"id:7f3a9c0b sub:001 dlvrd:000 submit date:261105120033 done date:261105120145 "
        b"stat:UNDELIV err:E0A Text:Hi there"
    )
    r = parse(sm)
    assert r is not None
    assert (r.message_id, r.state, r.error_code) == ("7f3a9c0b", ReceiptState.UNDELIVERABLE, "E0A")
    assert r.done_at == datetime(2026, 11, 5, 12, 1, 45, tzinfo=UTC)


def test_missing_text_field_and_lowercase_stat() -> None:
    r = parse(b"id:42 sub:001 dlvrd:001 submit date:2611051200 done date:2611051201 stat:expired")
    assert r is not None and r.state is ReceiptState.EXPIRED
    assert r.error_code == ""


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("DELIVRD", ReceiptState.DELIVERED),
        ("EXPIRED", ReceiptState.EXPIRED),
        ("DELETED", ReceiptState.DELETED),
        ("UNDELIV", ReceiptState.UNDELIVERABLE),
        ("ACCEPTD", ReceiptState.ACCEPTED),
        ("UNKNOWN", ReceiptState.UNKNOWN),
        ("REJECTD", ReceiptState.REJECTED),
        ("ENROUTE", ReceiptState.ENROUTE),
        ("WHATEVER", ReceiptState.UNKNOWN),
    ],
)
def test_stat_words(word: str, state: ReceiptState) -> None:
    r = parse(f"id:1 stat:{word} err:0".encode())
    assert r is not None and r.state is state


def test_bad_date_is_none_not_an_error() -> None:
    r = parse(b"id:1 done date:2613451299 stat:DELIVRD")
    assert r is not None and r.done_at is None
    assert parse_date("12345") is None


def test_not_a_receipt() -> None:
    assert not is_receipt(0, (), b"Hello, see you at 5")
    assert parse(b"Hello", esm_class=0) is None
    assert parse(b"id:1 stat:DELIVRD", esm_class=0x40) is None  # UDH MO is never a text receipt


def test_receipt_without_id_is_none() -> None:
    assert is_receipt(0x04, (), b"garbage")
    assert parse(b"garbage") is None


@given(st.binary(max_size=300), st.integers(0, 255))
def test_garbage_never_raises(sm: bytes, esm: int) -> None:
    parse(sm, esm_class=esm)
    parse(b"id:" + sm, esm_class=esm, tlvs=(Tlv(c.TLV_MESSAGE_STATE, sm[:1]),))


@pytest.mark.parametrize(
    "text",
    [
        b"ID: 4711 Stat: OK",  # a phone's SMS
        b"id:4711 stat:fine thanks",
        b"Id: 12 Stat: whatever",
        b"id: stat:",
    ],
)
def test_text_that_only_looks_like_a_receipt_is_not_one(text: bytes) -> None:
    assert not text_receipt(0, text)
    assert not is_receipt(0, (), text)


def test_text_receipt_needs_the_form_and_a_known_stat_word() -> None:
    assert text_receipt(0, STD)
    assert text_receipt(0, b"ID:77 STAT:undeliv")
    assert not text_receipt(0x40, STD)  # with a UDH it is an MO part
    assert not marked_receipt(0, ())
    assert marked_receipt(0x04, ()) and marked_receipt(0x20, ()) and marked_receipt(0, TLVS)


@pytest.mark.parametrize(
    ("base", "text_id", "expected"),
    [
        ("text", "0A1B", "0A1B"),
        ("hex", "0A1B", "2587"),
        ("dec", "007", "7"),
        ("hex", "xyz", "xyz"),
    ],
)
def test_a_bind_reads_a_receipt_text_id_in_its_configured_base(
    base: str, text_id: str, expected: str
) -> None:
    config = SmppConfig(
        name="smsc-a", host="127.0.0.1", port=1, system_id="b", password="p", receipt_id_base=base
    )
    handler = IncomingHandler(config, cast(MoPartStore, None), BindStats())
    sm = f"id:{text_id} sub:001 dlvrd:001 submit date:2612022130 done date:2612022131 "
    sm += "stat:DELIVRD err:000"
    pdu = DeliverSm(1, "+41790000000", "Sender", sm.encode(), esm_class=4)
    receipt = handler._receipt(pdu, pdu.short_message)
    assert receipt is not None
    assert (receipt.message_id, receipt.state, receipt.transport) == (
        expected,
        "delivered",
        "smsc-a",
    )


@pytest.mark.parametrize(
    ("tlv", "expected"),
    [
        (b"\0", "123"),  # an empty TLV: the id is the text's, in receipt_id_base
        (b"", "123"),
        (b" \0", "123"),
        (b"7B\0", "123"),  # the TLV's id, in submit_id_base
    ],
)
def test_an_empty_receipted_message_id_leaves_the_id_to_the_text_and_its_base(
    tlv: bytes, expected: str
) -> None:
    """Before, an empty receipted_message_id TLV made the text's id be read in the TLV's
    base (submit_id_base): "123" as hex, 291, an id no part has."""
    config = SmppConfig(
        name="smsc-a",
        host="127.0.0.1",
        port=1,
        system_id="b",
        password="p",
        submit_id_base="hex",
        receipt_id_base="dec",
    )
    handler = IncomingHandler(config, cast(MoPartStore, None), BindStats())
    sm = b"id:123 sub:001 dlvrd:001 submit date:2612022130 done date:2612022131 stat:DELIVRD"
    pdu = DeliverSm(
        1, "+41790000000", "Sender", sm, esm_class=4, tlvs=(Tlv(c.TLV_RECEIPTED_MESSAGE_ID, tlv),)
    )
    receipt = handler._receipt(pdu, pdu.short_message)
    assert receipt is not None and receipt.message_id == expected
