"""Address <-> (TON, NPI, digits): how sender ids and MSISDNs appear in SMPP fields.

Pure. Outgoing: an alphanumeric sender (has a letter) is TON 5 / NPI 0; `+digits` is
international (TON 1 / NPI 1, sent without '+'); `00digits` likewise; other digit strings
of up to 8 digits are short codes (TON 0 / NPI 1); longer bare digits are taken as
international. `canonical_number` is the same reading for a number written without a
TON (settings, stored rows): the one spelling the bridge keeps.

Incoming (`number_in`): every address an SMSC sends is read with that SMSC's
`AddressRules` into E.164 (`+` and digits) when it is a phone number, whatever TON and
spelling it came with (TON 1 with or without `+` or `00`, TON 2 national, TON 0
international or national digits); short codes stay as sent, and alphanumeric
addresses (TON 5, or any text with a non-digit) are names, never made into numbers.
`address_in` is the plain reading (TON 1 gets its `+`) the sandbox SMSC uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

import phonenumbers
from phonenumbers import NumberParseException

from bridge.smpp import constants as c
from bridge.text.controls import one_line

SHORT_CODE_MAX_DIGITS = 8
Ton0 = Literal["auto", "international", "national"]
_NUMBER: Final = re.compile(r"\+?[0-9]{1,20}", re.ASCII)
_MOBILE: Final = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


@dataclass(frozen=True, slots=True)
class SmppAddress:
    """An address as it goes into the *_ton, *_npi and *_addr fields."""

    ton: int
    npi: int
    addr: str


@dataclass(frozen=True, slots=True)
class AddressRules:
    """How one SMSC writes numbers: what TON 0 digits mean, and whose national numbers."""

    ton0: Ton0 = "auto"  # how to read TON 0 (unknown) digits; see `number_in`
    country: str = ""  # ISO 3166 code of the SMSC's national numbers ("" = keep them as sent)


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def source_address(sender: str) -> SmppAddress:
    """TON/NPI for a sender id (alphanumeric, short code or E.164 number)."""
    s = sender.strip()
    if s.startswith("+") and _digits(s[1:]):
        return SmppAddress(c.TON_INTERNATIONAL, c.NPI_ISDN, s[1:])
    if s.startswith("00") and _digits(s) and len(s) > 4:
        return SmppAddress(c.TON_INTERNATIONAL, c.NPI_ISDN, s[2:])
    if _digits(s):
        if len(s) <= SHORT_CODE_MAX_DIGITS:
            return SmppAddress(c.TON_UNKNOWN, c.NPI_ISDN, s)
        return SmppAddress(c.TON_INTERNATIONAL, c.NPI_ISDN, s)
    return SmppAddress(c.TON_ALPHANUMERIC, c.NPI_UNKNOWN, s)


def destination_address(msisdn: str) -> SmppAddress:
    """An E.164 destination ('+' optional) as TON 1 / NPI 1 digits."""
    return SmppAddress(c.TON_INTERNATIONAL, c.NPI_ISDN, msisdn.strip().lstrip("+"))


def address_in(ton: int, addr: str) -> str:
    """An incoming address as text: international numbers get a leading '+'. A name sent
    with TON 1 (peers do) stays a name. Control characters are dropped."""
    addr = one_line(addr).strip()
    if ton == c.TON_INTERNATIONAL and _digits(addr):
        return "+" + addr
    return addr


def canonical_number(text: str) -> str:
    """The one spelling of a number written without a TON (a setting, a stored row).

    `+digits` stays; `00digits` and bare digits longer than a short code become
    `+digits` (exactly what `source_address` sends as international); short codes,
    national spellings and names stay as written.
    """
    s = text.strip()
    if not s or s.startswith("+") or not _digits(s):
        return s
    if s.startswith("00") and len(s) > 4 and s[2] != "0":
        return "+" + s[2:]
    if s[0] != "0" and len(s) > SHORT_CODE_MAX_DIGITS:
        return "+" + s
    return s


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _international(digits: str, *, strict: bool) -> str | None:
    """`+digits` when the digits are a country code and number (valid, or only possible)."""
    if not digits or digits[0] == "0":
        return None
    try:
        number = phonenumbers.parse("+" + digits)
    except NumberParseException:
        return None
    ok = phonenumbers.is_valid_number(number)
    if not ok and not strict:
        ok = phonenumbers.is_possible_number(number)
    return "+" + digits if ok else None


def _national(digits: str, country: str, *, strict: bool) -> str | None:
    """E.164 for a number of `country` written nationally (trunk prefix optional)."""
    if not country:
        return None
    try:
        number = phonenumbers.parse(digits, country.upper())
    except NumberParseException:
        return None
    if phonenumbers.is_valid_number(number):
        return _e164(number)
    long_enough = len(digits) > SHORT_CODE_MAX_DIGITS
    if not strict and long_enough and phonenumbers.is_possible_number(number):
        return _e164(number)
    return None


def _national_mobile(digits: str, country: str) -> str | None:
    """E.164 for a short digit string only when it is a mobile number of `country`."""
    found = _national(digits, country, strict=True)
    if found is None:
        return None
    kind = phonenumbers.number_type(phonenumbers.parse(found))
    return found if kind in _MOBILE else None


def _unknown_ton(digits: str, rules: AddressRules) -> str:
    if digits.startswith("00"):
        return _international(digits[2:], strict=False) or digits
    if rules.ton0 == "national" or digits.startswith("0"):
        return _national(digits, rules.country, strict=False) or digits
    if len(digits) <= SHORT_CODE_MAX_DIGITS:  # a short code, unless a national mobile number
        if rules.ton0 == "international":
            return digits
        return _national_mobile(digits, rules.country) or digits
    if rules.ton0 == "international":
        return "+" + digits
    return (
        _international(digits, strict=False)
        or _national(digits, rules.country, strict=True)
        or digits
    )


def number_in(ton: int, addr: str, rules: AddressRules) -> str:
    """An address an SMSC sent, as the bridge keeps it: E.164 for a phone number.

    `+digits` and TON 1 are international (a leftover `00` is dropped). TON 2 is a
    national number of `rules.country`. TON 0 follows `rules.ton0`: `international`
    reads digits as country code and number; `national` as a national number;
    `auto` takes `00…` as international, a leading `0` as national, and other digits
    as international when they can be a country code and number, else as national
    when they form a valid national number. Up to 8 digits are a short code (in
    `auto` unless they form a national mobile number, as in Denmark or Norway). TON 3, 4 and 6
    (network-specific, subscriber, abbreviated) stay as sent; so does anything that is
    not a number: TON 5 (alphanumeric) or any text with a character other than digits.
    Control characters (an SMSC's or a phone's) are dropped: an address is one line.
    """
    text = one_line(addr).strip()
    if not text or ton == c.TON_ALPHANUMERIC or not _NUMBER.fullmatch(text):
        return text
    if text.startswith("+"):
        return text
    if ton == c.TON_INTERNATIONAL:
        digits = text[2:] if text.startswith("00") else text
        if digits.startswith("0"):  # not a country code: the SMSC sent a national number
            return _national(digits, rules.country, strict=False) or text
        return "+" + digits
    if ton == c.TON_NATIONAL:
        return _national(text, rules.country, strict=False) or text
    if ton != c.TON_UNKNOWN:
        return text
    return _unknown_ton(text, rules)
