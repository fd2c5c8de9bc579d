"""Per-mail overrides: headers and subject tokens, allowed or refused with the right reply."""

from __future__ import annotations

import pytest

from bridge.errors import Reject
from bridge.intake.overrides import (
    apply_overrides,
    check_overrides,
    may_override,
    read_overrides,
)
from bridge.tenants.policy import resolve
from bridge.text.mime import extract
from tests.helpers import make_mail


def _mail(subject: str = "Hello", **headers: str) -> bytes:
    raw = make_mail(subject=subject, body="Body text")
    head = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
    return head.encode() + raw


def test_headers_become_the_mail_level() -> None:
    raw = _mail(X_SMS_Priority="express", X_SMS_Validity="2h", X_SMS_Cost_Centre="4711")
    policy = resolve({})
    mail, mailed = apply_overrides(raw, extract(raw), policy)
    assert (mailed.priority, mailed.validity, mailed.cost_centre) == ("express", 7200.0, "4711")
    assert mailed.source("priority") == "mail" and mail.subject == "Hello"


def test_subject_tokens_are_taken_out_of_the_text() -> None:
    raw = _mail(subject="[express] Meeting [at:2026-12-01 09:00] moved [EXTERNAL]")
    policy = resolve({}, {"timezone": "Europe/Berlin"})
    mail, mailed = apply_overrides(raw, extract(raw), policy)
    assert mail.subject == "Meeting moved [EXTERNAL]"
    assert mailed.priority == "express"
    assert mailed.send_at == "2026-12-01T08:00:00+00:00"


def test_a_mail_without_overrides_keeps_the_policy() -> None:
    raw = _mail()
    policy = resolve({})
    mail, same = apply_overrides(raw, extract(raw), policy)
    assert same is policy and mail.subject == "Hello"


def test_an_override_the_customer_does_not_allow_is_refused() -> None:
    raw = _mail(X_SMS_Sender="Spoofed")
    with pytest.raises(Reject) as err:
        apply_overrides(raw, extract(raw), resolve({}))
    assert err.value.kind == "override_refused"
    assert err.value.reply.startswith("550 5.7.1 header X-SMS-Sender sets sender_id")
    allowed = resolve({}, {"mail_overrides": ["sender_id"]})
    _, mailed = apply_overrides(raw, extract(raw), allowed)
    assert mailed.sender_id == "Spoofed"


def test_a_token_the_customer_does_not_allow_is_refused() -> None:
    raw = _mail(subject="[from:ACME] hi")
    with pytest.raises(Reject, match="override_refused"):
        apply_overrides(raw, extract(raw), resolve({}, {"mail_overrides": ["priority"]}))


@pytest.mark.parametrize(
    ("headers", "subject", "detail"),
    [
        ({"X_SMS_Priority": "urgent"}, "x", "expected one of normal, express"),
        ({"X_SMS_Max_Parts": "0"}, "x", "integer from 1 to 255"),
        ({}, "[at:next week] x", "date and time"),
        ({}, "[validity:forever] x", "e.g. '30m'"),
    ],
)
def test_an_invalid_value_is_refused_with_how_to_fix_it(
    headers: dict[str, str], subject: str, detail: str
) -> None:
    raw = _mail(subject=subject, **headers)
    with pytest.raises(Reject) as err:
        check_overrides(read_overrides(raw, subject), resolve({}))
    assert err.value.kind == "bad_override"
    assert err.value.reply.startswith("550 5.6.0") and detail in err.value.reply


@pytest.mark.parametrize(
    ("raw", "asks"),
    [
        (b"X-SMS-Priority: express\r\nSubject: a\r\n\r\nbody\r\n", True),
        (b"Subject: a\r\nx-sms-sender:\r\n ACME\r\n\r\nbody\r\n", True),  # any case, folded
        (b"Subject: a\r\nX-Sms-Flash: yes", True),  # no body: all of it is header section
        (b"Subject: a\r\n\r\nX-SMS-Priority: express\r\n", False),  # in the body only
        (b"Subject: a\r\n\r\n--b\r\nX-SMS-Flash: yes\r\n\r\nhi\r\n--b--\r\n", False),  # a part's
        (b"Subject: a\n\nX-SMS-Priority: express\n", False),  # LF line ends
        (b"X-Mailer: Outlook\r\nSubject: a\r\n\r\n" + b"<p>x-sms-</p>\r\n" * 500, False),
    ],
)
def test_may_override_reads_only_the_header_section(raw: bytes, asks: bool) -> None:
    assert may_override(raw, "a") is asks
    # never false where the parser finds an override (what the quick test is for)
    assert asks or not read_overrides(raw, "a").values


def test_may_override_for_a_token_in_the_subject() -> None:
    assert may_override(b"Subject: [express] a\r\n\r\n", "[express] a")
