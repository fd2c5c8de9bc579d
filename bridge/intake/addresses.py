"""Recipient addresses: `<msisdn>@<domain>` to an E.164 number, or the reason why not.

Pure code. The local part may be written `+491701234567`, `00491701234567`,
`491701234567` or nationally `01701234567` (with the customer's default country),
with `-`, `.`, `/`, `(`, `)` or spaces (in a quoted local part) as separators, and
with SAPconnect's service prefix `SMS=+491701234567`. Only ASCII digits count: no
`%`-hacks, `!`-paths, source routes or look-alike digits get through.
`preview+<number>@<domain>` asks for a preview of the SMS instead of sending it.
The domain is matched in its canonical form (`bridge/domains.py`), so an address at an
internationalized domain is the same address in its U-label and its A-label spelling.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, shortnumberinfo

from bridge.domains import DomainError, address_domain
from bridge.errors import InputError

PREVIEW_PREFIX = "preview+"
SMS_SERVICES = ("SMS", "PAG", "PAGER")  # `[smtp] sms_services` by default
_SEPARATORS = re.compile(r"[ \-./()]")
_SERVICE = re.compile(r"^([A-Za-z][A-Za-z0-9_-]{0,9})=(.*)$")
_NUMBER = re.compile(r"\+?[0-9]{3,17}", re.ASCII)
_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
_PREMIUM_TYPES = frozenset({PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST})
# what a valid number that no SMS reaches is, in the reply that refuses it
_NOT_MOBILE = {
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.TOLL_FREE: "toll-free",
    PhoneNumberType.VOIP: "VoIP",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "company (UAN)",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.PERSONAL_NUMBER: "personal forwarding",
}


@dataclass(frozen=True, slots=True)
class Recipient:
    """A parsed recipient: the number, the address exactly as written, and its kind."""

    msisdn: str  # E.164 with '+', or the digits of a short code
    address: str
    domain: str
    preview: bool = False  # preview+<msisdn>@domain: show what would be sent, send nothing
    kind: str = "mobile"  # mobile | premium | short_code
    service: str = ""  # SAPconnect service prefix ("SMS" in SMS=+49…@domain), if any
    notify: tuple[str, ...] | None = None  # RFC 3461 NOTIFY as given
    orcpt: str | None = None  # RFC 3461 ORCPT as given


class RecipientError(InputError, ValueError):
    """Why an address is not an SMS recipient: `kind` is a reply kind of errors.REPLIES."""

    def __init__(self, kind: str, address: str, detail: str = "") -> None:
        super().__init__(kind)
        self.kind = kind
        self.address = address
        self.detail = detail


def split_address(address: str) -> tuple[str, str]:
    """Local part and the domain in its canonical form (`bridge/domains.py`: lower-case
    ASCII, a U-label as its A-label); a quoted local part loses its quotes. A domain that
    is no domain name is `bad_domain`, with the reason as the detail."""
    address = address.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1]
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or "@" in local.strip('"'):
        raise RecipientError("bad_recipient", address)
    if len(local) >= 2 and local[0] == '"' and local[-1] == '"':
        local = local[1:-1]
    try:
        return local, address_domain(domain)
    except DomainError as exc:
        raise RecipientError("bad_domain", address, detail=exc.reason) from None


# The numbers whose classification is kept: the same few numbers (on-call phones, a team's
# mobiles) get most mails, and classifying one costs ~20 µs of phonenumbers' matching.
NUMBERS_KEPT = 4096


@functools.lru_cache(maxsize=NUMBERS_KEPT)
def classify_number(text: str, default_country: str) -> tuple[str, str] | None:
    """(E.164 or short-code digits, kind) for a number written in any common form, else None.

    Pure (phonenumbers' metadata does not change while the process runs), so the answers
    for the last `NUMBERS_KEPT` spellings are kept; a spelling that raises is not.
    """
    digits = _SEPARATORS.sub("", text)
    if not _NUMBER.fullmatch(digits):
        return None
    region = default_country.upper()
    if not digits.startswith(("+", "0")) and len(digits) <= 6:
        short = phonenumbers.parse(digits, region)
        if shortnumberinfo.is_valid_short_number_for_region(short, region):
            return digits, "short_code"
        return None
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif not digits.startswith(("+", "0")):
        digits = "+" + digits  # 491701234567: international without a prefix
    try:
        number = phonenumbers.parse(digits, region)
    except NumberParseException:
        return None
    # number_type is UNKNOWN exactly when is_valid_number is False (both match the number
    # against its own region's patterns): one call instead of both
    kind = phonenumbers.number_type(number)
    if kind in _MOBILE_TYPES:
        what = "mobile"
    elif kind in _PREMIUM_TYPES:
        what = "premium"
    else:  # invalid (UNKNOWN), landline, toll-free, VoIP, …
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), what


def why_not_a_recipient(text: str, default_country: str) -> tuple[str, str]:
    """(reply kind, detail) for a local part `classify_number` refused.

    A valid number that is not a mobile one ("+4930123456", a landline) is named as what it
    is; a number written internationally that has no valid length or prefix is "not a valid
    number"; anything else is asked for in international form.
    """
    digits = _SEPARATORS.sub("", text)
    if not _NUMBER.fullmatch(digits):
        return "bad_recipient", ""
    international = digits.startswith(("+", "00"))
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    try:
        number = phonenumbers.parse(digits, default_country.upper())
    except NumberParseException:
        return "bad_recipient", ""
    shown = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    if phonenumbers.is_valid_number(number):
        what = _NOT_MOBILE.get(phonenumbers.number_type(number), "non-mobile")
        return "not_mobile", f"{what} number ({shown})"
    if international:
        return "invalid_number", shown
    return "bad_recipient", ""


def normalise_msisdn(text: str, default_country: str) -> str | None:
    """E.164 (`+` and digits) for a mobile number written in any common form, else None."""
    found = classify_number(text, default_country)
    return found[0] if found and found[1] == "mobile" else None


def parse_recipient(
    address: str,
    domains: tuple[str, ...],
    default_country: str,
    services: Collection[str] = SMS_SERVICES,
) -> Recipient:
    """The recipient for `address`, or RecipientError with the reply kind to answer.

    `domains` are canonical (`configured_domain`), as `[smtp] domains` are: an address
    matches one in either spelling of an internationalized domain."""
    local, domain = split_address(address)
    if domain not in domains:
        raise RecipientError("unknown_domain", address)
    preview = local.lower().startswith(PREVIEW_PREFIX)
    if preview:
        local = local[len(PREVIEW_PREFIX) :]
    service = ""
    match = _SERVICE.match(local)
    if match:
        service = match.group(1).upper()
        if service not in services:
            raise RecipientError("unsupported_service", address, detail=service)
        local = match.group(2)
    found = classify_number(local, default_country)
    if found is None:
        kind, detail = why_not_a_recipient(local, default_country)
        raise RecipientError(kind, address, detail=detail)
    msisdn, kind = found
    return Recipient(
        msisdn=msisdn, address=address, domain=domain, preview=preview, kind=kind, service=service
    )


# Reply kinds a null-sender probe gets for an address: what holds whoever sends
_PROBE_REFUSES = frozenset(
    {"unknown_domain", "bad_domain", "unsupported_service", "not_mobile", "invalid_number"}
)


def probe_refusal(
    address: str, domains: tuple[str, ...], services: Collection[str] = SMS_SERVICES
) -> RecipientError | None:
    """Why a recipient probe (RCPT after `MAIL FROM:<>`: an MTA's callout verification)
    is refused, or None to accept it.

    A probe has no sender, so only what holds for every sender is refused: what is no
    address, a domain that is not ours, an unknown service, a number written
    internationally that is not a valid mobile number. A local part that depends on the
    sender is accepted — a national number (the sender's default country reads it) or a
    name (a list of the sender's customer) — and the real transaction, from a sender,
    decides."""
    try:
        split_address(address)
    except RecipientError as err:  # not an address at all
        return err
    try:
        parse_recipient(address, domains, "ZZ", services)  # "ZZ": no country assumed
    except RecipientError as err:
        return err if err.kind in _PROBE_REFUSES else None
    return None
