"""Recipient parsing: every common spelling of a mobile number, and clear refusals."""

from __future__ import annotations

import pytest

from bridge.errors import reply
from bridge.intake.addresses import (
    RecipientError,
    normalise_msisdn,
    parse_recipient,
    probe_refusal,
)

DOMAINS = ("eu.rsms.net", "sms.example.com")


@pytest.mark.parametrize(
    "address",
    [
        "+491701234567@eu.rsms.net",
        "00491701234567@eu.rsms.net",
        "491701234567@eu.rsms.net",
        "01701234567@eu.rsms.net",
        "0170-123-4567@EU.RSMS.NET",
        "0170.1234567@sms.example.com",
        '"+49 170 1234567"@eu.rsms.net',
        "<+491701234567@eu.rsms.net>",
    ],
)
def test_spellings_of_one_number(address: str) -> None:
    assert parse_recipient(address, DOMAINS, "DE").msisdn == "+491701234567"


def test_national_number_uses_the_default_country() -> None:
    assert normalise_msisdn("0612345678", "NL") == "+31612345678"
    assert normalise_msisdn("07911123456", "GB") == "+447911123456"


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("hello@eu.rsms.net", "bad_recipient"),
        ("+4930123456@eu.rsms.net", "not_mobile"),  # a landline cannot receive SMS
        ("0049 30 123456@eu.rsms.net", "not_mobile"),
        ("030-123456@eu.rsms.net", "not_mobile"),
        ("+498001234567@eu.rsms.net", "not_mobile"),  # toll-free
        ("+49170@eu.rsms.net", "invalid_number"),  # written internationally, too short
        ("0170123@eu.rsms.net", "bad_recipient"),
        ("+491701234567@elsewhere.example", "unknown_domain"),
        ("no-at-sign", "bad_recipient"),
        ("@eu.rsms.net", "bad_recipient"),
    ],
)
def test_refusals_name_the_reason(address: str, kind: str) -> None:
    with pytest.raises(RecipientError) as err:
        parse_recipient(address, DOMAINS, "DE")
    assert err.value.kind == kind


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("+4930123456@eu.rsms.net", "is a landline number (+49 30 123456), not a mobile number"),
        ("+498001234567@eu.rsms.net", "is a toll-free number (+49 800 1234567), not a mobile"),
        ("+49170123@eu.rsms.net", "is not a valid phone number (+49 170123 has a wrong length"),
    ],
)
def test_a_number_written_internationally_is_told_what_is_wrong(address: str, says: str) -> None:
    with pytest.raises(RecipientError) as err:
        parse_recipient(address, DOMAINS, "DE")
    text = reply(err.value.kind, recipient=address, domain="eu.rsms.net", detail=err.value.detail)
    assert text.startswith("550 5.1.3 ") and says in text
    assert "international form" not in text


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        # what holds for every sender: refused to a probe (MAIL FROM:<>, a callout)
        ("+4930123456@eu.rsms.net", "not_mobile"),
        ("0049301234567@eu.rsms.net", "not_mobile"),
        ("+4917012@eu.rsms.net", "invalid_number"),
        ("+491701234567@elsewhere.example", "unknown_domain"),
        ("FAX=+491701234567@eu.rsms.net", "unsupported_service"),
        ("bad", "bad_recipient"),
        # what depends on the sender: accepted, the real transaction decides
        ("+491701234567@eu.rsms.net", None),
        ("SMS=+491701234567@eu.rsms.net", None),
        ("01701234567@eu.rsms.net", None),  # national: the sender's country reads it
        ("030123456@eu.rsms.net", None),
        ("oncall@eu.rsms.net", None),  # a list of the sender's customer, maybe
    ],
)
def test_a_probe_is_refused_only_what_every_sender_would_be(address: str, kind: str | None) -> None:
    refused = probe_refusal(address, DOMAINS)
    assert (refused.kind if refused is not None else None) == kind
