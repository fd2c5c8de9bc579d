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
    "anna@corp-.local",
    "anna@corp_x.local",
    "",
    "@corp.example",
]


@pytest.mark.parametrize("value", BAD)
def test_invalid_addresses_are_refused_with_a_reason(value: str) -> None:
    with pytest.raises(MailAddressError, match="is not a valid mail address: "):
        check_mail_address(value)


def test_an_intranet_domain_is_a_sender_domain() -> None:
    # SAP systems send from <user>@<default domain>, often an AD name under .local, which
    # email-validator refuses as special-use: such a sender could not be added at all.
    assert check_mail_address("JDOE@sap-prd.corp.local") == "jdoe@sap-prd.corp.local"
    assert check_mail_address("alerts@erp.internal") == "alerts@erp.internal"
    assert check_mail_address("mailsms@localhost") == "mailsms@localhost"
    assert check_mail_address("anna@corp.test") == "anna@corp.test"


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
    private = tld in ("test", "local")  # an intranet's names: the domain checked by label
    checked = f"{local}@example.com" if private else address
    try:
        valid = validate_email(checked, check_deliverability=False, allow_smtputf8=False)
        expected: str | None = str(valid.ascii_email).lower()
        if private:
            labels_ok = all(
                lab and not lab.startswith("-") and not lab.endswith("-")
                for lab in domain.split(".")
            )
            expected = f"{valid.local_part}@{domain}.{tld}".lower() if labels_ok else None
    except EmailNotValidError:
        expected = None
    try:
        got: str | None = check_mail_address(address)
    except MailAddressError:
        got = None
    assert got == expected
