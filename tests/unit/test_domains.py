"""Domains in one canonical form: the configured ones once, an address's once per RCPT."""

from __future__ import annotations

from pathlib import Path

import idna
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domains import DomainError, _idna_form, address_domain, configured_domain
from bridge.errors import ConfigError, reply
from bridge.intake.addresses import RecipientError, parse_recipient, split_address
from bridge.intake.listing import list_name
from bridge.intake.settings import SmtpSettings
from bridge.settings import load_settings

A_LABEL = "sms.xn--bro-hoa.example"

SPELLINGS = [
    "sms.büro.example",
    "SMS.BÜRO.EXAMPLE",
    "Sms.Büro.Example",
    "sms.xn--bro-hoa.example",
    "SMS.XN--BRO-HOA.EXAMPLE",
    "sms.xn--Bro-hoa.example",
    "sms。büro.example",  # an ideographic full stop, as a Japanese keyboard types the dot
    "ｓｍｓ.büro.example",  # full-width letters
]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_of_a_domain_is_one_canonical_form(spelling: str) -> None:
    assert configured_domain(spelling) == A_LABEL
    assert address_domain(spelling) == A_LABEL


def test_a_configured_domain_is_stripped_and_ascii_stays_as_it_is_lower_cased() -> None:
    assert configured_domain(" EU.RSMS.NET ") == "eu.rsms.net"
    assert configured_domain("sap-prd.corp.local") == "sap-prd.corp.local"


def test_sharp_s_is_kept_as_browsers_and_email_validator_keep_it() -> None:
    # non-transitional UTS 46 (IDNA2008): straße is not strasse
    assert address_domain("straße.example") == "xn--strae-oqa.example"
    assert address_domain("strasse.example") == "strasse.example"


@pytest.mark.parametrize(
    ("domain", "reason"),
    [
        ("sms.☕.example", "codepoint U+2615 at position 1 of '☕' not allowed"),
        ("sms.-büro.example", "label must not start or end with a hyphen"),
        ("sms.b\u200dro.example", "joiner U+200D not allowed"),
        ("büro", "a domain has at least two labels"),
        ("localhost", "a domain has at least two labels"),
        ("sms.bu_ro.example", "the label 'bu_ro' has '_' (U+005F)"),
        ("-sms.example", "the label '-sms' starts or ends with a hyphen"),
        ("sms.example.", "a label is empty"),
        ("a" * 64 + ".example", "is longer than 63 characters"),
        ("", "it is empty"),
    ],
)
def test_a_domain_that_is_no_domain_name_is_refused_saying_why(domain: str, reason: str) -> None:
    for canonical in (address_domain, configured_domain):
        with pytest.raises(DomainError) as err:
            canonical(domain)
        assert reason in err.value.reason, (canonical, err.value.reason)


def test_an_invalid_a_label_is_refused_in_the_settings_and_serves_nothing_at_rcpt() -> None:
    with pytest.raises(DomainError, match="invalid A-label"):
        configured_domain("xn--zz.example")
    # at RCPT an ASCII domain is not converted: it cannot equal a checked configured domain
    assert address_domain("XN--ZZ.example") == "xn--zz.example"


def test_an_ascii_domain_takes_the_fast_path_without_idna() -> None:
    before = _idna_form.cache_info()
    for domain in ("eu.rsms.net", "EU.RSMS.NET", "SMS.XN--BRO-HOA.EXAMPLE"):
        address_domain(domain)
    with pytest.raises(DomainError):
        address_domain("bad_domain.example")
    after = _idna_form.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)


def test_an_internationalized_domain_is_converted_once() -> None:
    address_domain("sms.bürö-once.example")
    before = _idna_form.cache_info()
    for _ in range(3):
        assert address_domain("sms.bürö-once.example") == "sms.xn--br-once-b1a6c.example"
    after = _idna_form.cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (3, 0)


_LDH = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True).filter(
    lambda label: "--" not in label  # R-LDH labels (`ab--c`) are IDNA's, refused in full
)


@given(labels=st.lists(_LDH, min_size=2, max_size=4), upper=st.booleans())
def test_the_fast_path_gives_what_the_full_conversion_gives(labels: list[str], upper: bool) -> None:
    domain = ".".join(labels)
    written = domain.upper() if upper else domain
    assert address_domain(written) == configured_domain(written) == domain


_U_LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyzäöüßéçñøåłž", min_size=1, max_size=12)


@given(label=_U_LABEL)
def test_a_u_label_its_a_label_and_its_upper_case_are_one_domain(label: str) -> None:
    domain = f"sms.{label}.example"
    a_label = idna.encode(domain, uts46=True).decode("ascii")
    assert address_domain(domain) == address_domain(a_label) == a_label
    if "ß" not in label:  # upper-cased, ß is SS: another domain
        assert address_domain(domain.upper()) == a_label


# -- where addresses meet configured domains ------------------------------------------------

DOMAINS = ("eu.rsms.net", A_LABEL)


@pytest.mark.parametrize(
    "address",
    [
        "+491701234567@sms.büro.example",
        "+491701234567@SMS.Büro.Example",
        "<SMS=+491701234567@sms.büro.example>",
        "preview+491701234567@sms.xn--bro-hoa.example",
        '"+49 170 1234567"@sms.büro.example',
    ],
)
def test_a_recipient_at_the_u_label_is_the_one_at_the_a_label(address: str) -> None:
    recipient = parse_recipient(address, DOMAINS, "DE")
    assert (recipient.msisdn, recipient.domain) == ("+491701234567", A_LABEL)
    assert recipient.address == address  # as written


def test_the_domain_of_an_address_is_split_off_canonical() -> None:
    assert split_address("Team@SMS.Büro.example") == ("Team", A_LABEL)


@pytest.mark.parametrize("address", ["team@sms.büro.example", "Team@SMS.XN--BRO-HOA.example"])
def test_a_list_address_at_either_spelling_names_the_list(address: str) -> None:
    assert list_name(address, DOMAINS) == "team"


@pytest.mark.parametrize(
    ("address", "kind", "says"),
    [
        (
            "+491701234567@sms.bürö.example",
            "unknown_domain",
            "550 5.1.2 The domain of <+491701234567@sms.bürö.example> is not a domain this "
            "bridge serves; write <number>@eu.rsms.net",
        ),
        (
            "+491701234567@sms.☕.example",
            "bad_domain",
            "550 5.1.3 The domain of <+491701234567@sms.☕.example> is not a valid domain name "
            "(codepoint U+2615 at position 1 of '☕' not allowed); check its spelling, or write "
            "it in ASCII (an internationalized label as its xn-- A-label), e.g. "
            "<number>@eu.rsms.net",
        ),
        (
            "hello@localhost",
            "bad_domain",
            "550 5.1.3 The domain of <hello@localhost> is not a valid domain name (a domain has "
            "at least two labels (e.g. sms.example.com)); check its spelling",
        ),
    ],
)
def test_a_domain_not_served_or_not_valid_is_told_so_not_called_a_number(
    address: str, kind: str, says: str
) -> None:
    with pytest.raises(RecipientError) as err:
        parse_recipient(address, DOMAINS, "DE")
    assert err.value.kind == kind
    text = reply(kind, recipient=address, domain=DOMAINS[0], detail=err.value.detail)
    assert text.startswith(says) and "mobile number" not in text


# -- the settings: configured once, either spelling --------------------------------------------


def test_the_configured_domains_are_canonical_once_and_without_repeats() -> None:
    smtp = SmtpSettings(
        domains=["SMS.Büro.example", "eu.rsms.net", "sms.xn--bro-hoa.example"],
        domain_customers={"sms.BÜRO.example": "sap-prd"},
    )
    assert smtp.domains == (A_LABEL, "eu.rsms.net")
    assert smtp.domain_customers == {A_LABEL: "sap-prd"}


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        (
            'domains = ["sms.☕.example"]',
            "smtp: domains: 'sms.☕.example' is not a domain name (codepoint U+2615 at position 1 "
            "of '☕' not allowed); write it as the clients address it, e.g. 'sms.example.com', "
            "or an internationalized one as 'sms.büro.example' or its A-label "
            "'sms.xn--bro-hoa.example'",
        ),
        ('domains = ["xn--zz.example"]', "'xn--zz.example' is not a domain name (invalid A-label"),
        ('domains = ["eu.rsms.net", "sms"]', "'sms' is not a domain name (a domain has at least"),
        (
            'domain_customers = { "sap_prd.example" = "sap-prd" }',
            "smtp: domain_customers: 'sap_prd.example' is not a domain name (the label 'sap_prd' "
            "has '_' (U+005F), not a letter, digit or hyphen)",
        ),
    ],
)
def test_a_configured_domain_that_is_no_domain_name_stops_the_settings(
    tmp_path: Path, toml: str, says: str
) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(f"[sandbox]\nenabled = true\n[smtp]\n{toml}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert says in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_a_reserved_domain_may_be_written_in_the_other_spelling(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(
        '[sandbox]\nenabled = true\n[smtp]\ndomains = ["sms.xn--bro-hoa.example"]\n'
        'domain_customers = { "sms.büro.example" = "sap-prd" }\n',
        encoding="utf-8",
    )
    smtp = load_settings(path, environ={}).smtp
    assert (smtp.domains, smtp.domain_customers) == ((A_LABEL,), {A_LABEL: "sap-prd"})


def test_a_long_text_is_refused_before_any_conversion() -> None:
    with pytest.raises(DomainError, match="longer than 253 characters"):
        address_domain("ü" * 254 + ".example")
