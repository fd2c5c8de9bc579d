"""GSM 03.38 codec: tables, septet counts, TS 23.038 details."""

from __future__ import annotations

import pytest

from bridge.text import decode_gsm7, encode_gsm7, gsm7_units, is_gsm7, non_gsm7_chars
from bridge.text.gsm7 import Gsm7EncodeError
from bridge.text.shift_tables import BASIC_TABLE, EXTENSION_TABLE


def test_at_pound_dollar_yen_round_trip_through_zero_bytes() -> None:
    data = encode_gsm7("@£$¥")
    assert data == b"\x00\x01\x02\x03"
    assert decode_gsm7(data) == "@£$¥"
    assert decode_gsm7(b"\x00\x00a\x00") == "@@a@"  # 0x00 is never a terminator


@pytest.mark.parametrize(
    ("char", "code"),
    [("$", 0x02), ("_", 0x11), ("¤", 0x24), ("¡", 0x40), ("§", 0x5F), ("¿", 0x60), ("à", 0x7F)],
)
def test_basic_table_positions(char: str, code: int) -> None:
    assert encode_gsm7(char) == bytes([code])


def test_extension_characters_cost_two_septets() -> None:
    assert encode_gsm7("€[]") == b"\x1be\x1b<\x1b>"
    for code, char in EXTENSION_TABLE.items():
        assert encode_gsm7(char) == bytes([0x1B, code])
        assert gsm7_units(char) == 2
        assert decode_gsm7(bytes([0x1B, code])) == char
    assert gsm7_units("a€\f^{}\\[~]|") == 1 + 2 * 10


def test_every_basic_character_round_trips() -> None:
    for code, char in enumerate(BASIC_TABLE):
        if code == 0x1B:
            continue
        assert decode_gsm7(encode_gsm7(char)) == char


def test_c_cedilla_accepted_both_ways_decoded_as_capital() -> None:
    assert encode_gsm7("ç") == encode_gsm7("Ç") == b"\x09"
    assert decode_gsm7(b"\x09") == "Ç"
    assert is_gsm7("ç")


def test_escape_edge_cases() -> None:
    assert decode_gsm7(b"a\x1bA") == "aA"  # ESC + unknown shows the basic character
    assert decode_gsm7(b"ab\x1b") == "ab"  # lone trailing ESC dropped
    assert decode_gsm7(b"\x1b\x1bx") == " x"  # ESC ESC: space (reserved)
    assert decode_gsm7(b"\xc1") == "A"  # top bit ignored


def test_not_gsm7() -> None:
    assert not is_gsm7("’")
    assert non_gsm7_chars("a’b’c😀á`") == ["’", "😀", "á", "`"]
    assert non_gsm7_chars("plain @ text") == []
    with pytest.raises(Gsm7EncodeError) as err:
        encode_gsm7("x😀")
    assert err.value.chars == ["😀"]
    with pytest.raises(ValueError):
        gsm7_units("ж")
