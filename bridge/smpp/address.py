"""Address <-> (TON, NPI, digits): how sender ids and MSISDNs appear in SMPP fields.

Pure. Outgoing: an alphanumeric sender (has a letter) is TON 5 / NPI 0; `+digits` is
international (TON 1 / NPI 1, sent without '+'); `00digits` likewise; other digit strings
of up to 8 digits are short codes (TON 0 / NPI 1); longer bare digits are taken as
international. Incoming: TON 1 gets its '+' back.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.smpp import constants as c

SHORT_CODE_MAX_DIGITS = 8


@dataclass(frozen=True, slots=True)
class SmppAddress:
    """An address as it goes into the *_ton, *_npi and *_addr fields."""

    ton: int
    npi: int
    addr: str


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
    """An incoming address as text: international numbers get a leading '+'."""
    if ton == c.TON_INTERNATIONAL and addr and not addr.startswith("+"):
        return "+" + addr
    return addr
