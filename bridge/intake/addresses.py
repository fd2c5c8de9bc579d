"""Recipient addresses: `<msisdn>@<domain>` to an E.164 mobile number, or the reason why not.

Pure code. The local part may be written `+491701234567`, `00491701234567`,
`491701234567` or nationally `01701234567` (with the customer's default country),
with `-`, `.`, `/`, `(`, `)` or spaces (in a quoted local part) as separators.
`preview+<number>@<domain>` asks for a preview of the SMS instead of sending it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

PREVIEW_PREFIX = "preview+"
_SEPARATORS = re.compile(r"[\s\-./()]")
_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


@dataclass(frozen=True, slots=True)
class Recipient:
    """A parsed recipient: the number in E.164 and the address exactly as written."""

    msisdn: str
    address: str
    domain: str
    preview: bool = False  # preview+<msisdn>@domain: show what would be sent, send nothing


class RecipientError(ValueError):
    """Why an address is not an SMS recipient: `kind` is a reply kind of errors.REPLIES."""

    def __init__(self, kind: str, address: str) -> None:
        super().__init__(kind)
        self.kind = kind
        self.address = address


def split_address(address: str) -> tuple[str, str]:
    """Local part and lower-cased domain; a quoted local part loses its quotes."""
    local, at, domain = address.strip().strip("<>").rpartition("@")
    if not at or not local or not domain:
        raise RecipientError("bad_recipient", address)
    if len(local) >= 2 and local[0] == '"' and local[-1] == '"':
        local = local[1:-1]
    return local, domain.lower()


def normalise_msisdn(text: str, default_country: str) -> str | None:
    """E.164 (`+` and digits) for a mobile number written in any common form, else None."""
    digits = _SEPARATORS.sub("", text)
    if not digits:
        return None
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif not digits.startswith("+") and not digits.startswith("0"):
        digits = "+" + digits  # 491701234567: international without a prefix
    if not re.fullmatch(r"\+?\d{3,17}", digits):
        return None
    try:
        number = phonenumbers.parse(digits, default_country.upper())
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_recipient(address: str, domains: tuple[str, ...], default_country: str) -> Recipient:
    """The recipient for `address`, or RecipientError with the reply kind to answer."""
    local, domain = split_address(address)
    if domain not in domains:
        raise RecipientError("unknown_domain", address)
    preview = local.lower().startswith(PREVIEW_PREFIX)
    if preview:
        local = local[len(PREVIEW_PREFIX) :]
    msisdn = normalise_msisdn(local, default_country)
    if msisdn is None:
        raise RecipientError("bad_recipient", address)
    return Recipient(msisdn=msisdn, address=address, domain=domain, preview=preview)
