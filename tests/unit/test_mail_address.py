"""The one mail-address check: its fast path agrees with email-validator; entry points use it."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.mail_address import MailAddressError, check_mail_address

BAD = [
    "anna@corp..example",
    "anna..alpha@corp.example",
    ".anna@corp.example",
    "anna@-corp.example",
    "anna@corp",
    "anna corp@corp.example",
    "anna@corp.example>",
    "<anna@corp.example>",
    "anna@corp.example\r\nBcc: x@evil.example",
    "anna@xn--zz.example",
    "anna@corp.test",
    "",
    "@corp.example",
]


@pytest.mark.parametrize("value", BAD)
def test_invalid_addresses_are_refused_with_a_reason(value: str) -> None:
    with pytest.raises(MailAddressError, match="is not a valid mail address: "):
        check_mail_address(value)


def test_addresses_are_normalised() -> None:
    assert check_mail_address(" Anna.Alpha@Corp.Example ") == "anna.alpha@corp.example"
    assert check_mail_address("o'brien+sms@corp.example") == "o'brien+sms@corp.example"
    assert check_mail_address("anna@Bücher.example") == "anna@xn--bcher-kva.example"


_LOCAL = st.text(alphabet="abcXYZ019_+-.'!", min_size=1, max_size=70)
_LABEL = st.text(alphabet="abz09-", min_size=1, max_size=8)
_DOMAIN = st.lists(_LABEL, min_size=1, max_size=4).map(".".join)
_TLD = st.sampled_from(["example", "de", "com", "test", "local", "c0m", "x", "co--op"])


@settings(max_examples=400, deadline=None)
@given(local=_LOCAL, domain=_DOMAIN, tld=_TLD)
def test_the_fast_path_agrees_with_email_validator(local: str, domain: str, tld: str) -> None:
    address = f"{local}@{domain}.{tld}"
    try:
        expected: str | None = str(
            validate_email(address, check_deliverability=False, allow_smtputf8=False).ascii_email
        ).lower()
    except EmailNotValidError:
        expected = None
    try:
        got: str | None = check_mail_address(address)
    except MailAddressError:
        got = None
    assert got == expected
