"""Addresses from an SMSC -> E.164 (every TON and spelling), and the one stored spelling."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.smpp import constants as c
from bridge.smpp.address import (
    AddressRules,
    canonical_number,
    number_in,
    source_address,
)
from bridge.text.controls import one_line

DE = AddressRules("auto", "DE")
PHONE = "+491701234567"


@pytest.mark.parametrize(
    ("ton", "addr"),
    [
        (0, "491701234567"),  # TON 0, international digits
        (0, "00491701234567"),
        (0, "+491701234567"),
        (0, "01701234567"),  # TON 0, national with trunk prefix
        (0, "1701234567"),  # TON 0, national without: cannot be an international number
        (1, "491701234567"),
        (1, "+491701234567"),
        (1, "00491701234567"),  # TON 1 with a leftover international prefix
        (1, "01701234567"),  # a national number mislabelled TON 1
        (2, "1701234567"),
        (2, "01701234567"),
        (2, "00491701234567"),
        (0, " 491701234567 "),
        (1, "491701234567\x00"),  # control characters: a C string's NUL, an SMSC's junk
        (1, "\x1b4917012\x7f34567\r\n"),
    ],
)
def test_every_spelling_of_one_number_is_one_e164(ton: int, addr: str) -> None:
    assert number_in(ton, addr, DE) == PHONE


@pytest.mark.parametrize(
    ("ton", "addr"),
    [
        (5, "ACME"),
        (5, "491701234567"),  # TON 5 says it is a name, even when it is all digits
        (0, "Info24"),
        (1, "Bank-Info"),
        (0, "+49 170 1234567"),  # not a number as sent: kept, never guessed
        (0, "80888"),  # a short code
        (0, "12345678"),
        (3, "4444"),  # network specific
        (6, "112"),  # abbreviated
        (4, "1234567"),  # subscriber number
        (0, ""),
    ],
)
def test_names_and_short_codes_stay_as_sent(ton: int, addr: str) -> None:
    assert number_in(ton, addr, DE) == addr.strip()


def test_control_characters_leave_a_name() -> None:
    assert number_in(5, "\x01AC\x1bME", DE) == "ACME"
    assert number_in(5, "Bank\tInfo\n", DE) == "Bank Info"


def test_ton0_modes() -> None:
    assert number_in(0, "1701234567", AddressRules("international", "DE")) == "+1701234567"
    assert number_in(0, "491701234567", AddressRules("national", "US")) == "491701234567"
    assert number_in(0, "2025550123", AddressRules("national", "US")) == "+12025550123"
    assert number_in(0, "12025550123", AddressRules("auto", "US")) == "+12025550123"
    assert number_in(0, "12345", AddressRules("international", "DE")) == "12345"
    # 8-digit national mobile numbers (Denmark) in auto; an Austrian 5-digit number is not one
    assert number_in(0, "41234567", AddressRules("auto", "DK")) == "+4541234567"
    assert number_in(0, "12345", AddressRules("auto", "AT")) == "12345"


def test_without_a_country_national_numbers_stay_as_sent() -> None:
    rules = AddressRules("auto", "")
    assert number_in(2, "1701234567", rules) == "1701234567"
    assert number_in(0, "01701234567", rules) == "01701234567"
    assert number_in(0, "491701234567", rules) == PHONE


def _mobiles() -> list[tuple[str, phonenumbers.PhoneNumber]]:
    out = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        if example is not None:
            out.append((region, example))
    return out


@pytest.mark.parametrize(("region", "example"), _mobiles(), ids=lambda v: str(v)[:2])
def test_every_countrys_mobile_numbers_in_every_ton(
    region: str, example: phonenumbers.PhoneNumber
) -> None:
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    digits = e164[1:]
    nsn = phonenumbers.national_significant_number(example)
    national = "".join(
        ch
        for ch in phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
        if ch.isdigit()
    )
    auto = AddressRules("auto", region)
    assert number_in(1, digits, auto) == e164
    assert number_in(0, digits, auto) == e164
    assert number_in(0, "00" + digits, auto) == e164
    assert number_in(2, nsn, auto) == e164
    assert number_in(2, national, auto) == e164
    assert number_in(0, national, AddressRules("national", region)) == e164


@given(st.integers(0, 6), st.text(max_size=24))
def test_never_raises_and_text_with_a_non_digit_is_kept(ton: int, addr: str) -> None:
    out = number_in(ton, addr, DE)
    body = one_line(addr).strip()  # kept as one line, without control characters
    if not (body.removeprefix("+").isascii() and body.removeprefix("+").isdigit()):
        assert out == body


@given(st.sampled_from([0, 1, 2]), st.from_regex(r"\+[1-9][0-9]{6,13}", fullmatch=True))
def test_e164_in_is_e164_out(ton: int, e164: str) -> None:
    assert number_in(ton, e164, DE) == e164


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("+491701234567", "+491701234567"),
        ("491701234567", "+491701234567"),
        ("00491701234567", "+491701234567"),
        (" 4915550000001", "+4915550000001"),
        ("12345", "12345"),  # short code
        ("01701234567", "01701234567"),  # national: needs a country, kept as written
        ("ACME", "ACME"),
        ("", ""),
    ],
)
def test_canonical_number(written: str, kept: str) -> None:
    assert canonical_number(written) == kept


@given(st.text(max_size=20))
def test_canonical_number_is_what_we_send_as_international(sender: str) -> None:
    """A canonical `+…` sender goes out exactly as the original spelling would (TON 1)."""
    kept = canonical_number(sender)
    assert canonical_number(kept) == kept
    if kept.startswith("+") and kept != sender.strip():
        assert source_address(kept) == source_address(sender)
        assert source_address(kept).ton == c.TON_INTERNATIONAL
