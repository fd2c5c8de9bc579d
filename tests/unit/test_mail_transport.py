"""Pure parts of the mailer: refusal classification, the transport table, certificate names."""

from __future__ import annotations

import ssl

import aiosmtplib
import pytest

from bridge.notices.refusals import classify
from bridge.notices.transport_table import (
    Entry,
    Hop,
    TlsLevel,
    TransportTable,
    names_match,
    parse_next_hop,
)


def _instances(code: int) -> list[BaseException]:
    """One instance of every exception type aiosmtplib exports, with `code` where it has one."""
    out: list[BaseException] = []
    for name in aiosmtplib.errors.__all__:
        cls = getattr(aiosmtplib.errors, name)
        if cls is aiosmtplib.SMTPRecipientsRefused:
            out.append(cls([aiosmtplib.SMTPRecipientRefused(code, "no", "a@b.example")]))
        elif issubclass(cls, aiosmtplib.SMTPSenderRefused | aiosmtplib.SMTPRecipientRefused):
            out.append(cls(code, "no", "a@b.example"))
        elif issubclass(cls, aiosmtplib.SMTPResponseException):
            out.append(cls(code, "no"))
        else:
            out.append(cls("no"))
    return out


# A 5xx to these is not a verdict on the recipient: the relay or our login is at fault.
_SOFT = (aiosmtplib.SMTPConnectResponseError, aiosmtplib.SMTPAuthenticationError)


@pytest.mark.parametrize("exc", _instances(550), ids=lambda e: type(e).__name__)
def test_every_aiosmtplib_exception_is_classified_by_its_code_550(exc: BaseException) -> None:
    refusal = classify(exc, "relay:25")
    has_code = isinstance(exc, aiosmtplib.SMTPResponseException | aiosmtplib.SMTPRecipientsRefused)
    assert refusal.permanent == (has_code and not isinstance(exc, _SOFT))
    assert refusal.reason.startswith("relay:25")
    if has_code:
        assert "550" in refusal.reason


@pytest.mark.parametrize("exc", _instances(451), ids=lambda e: type(e).__name__)
def test_every_aiosmtplib_exception_with_451_is_temporary(exc: BaseException) -> None:
    assert classify(exc, "relay:25").permanent is False


def test_refused_recipients_are_permanent_only_when_every_refusal_is() -> None:
    mixed = aiosmtplib.SMTPRecipientsRefused(
        [
            aiosmtplib.SMTPRecipientRefused(550, "5.1.1 unknown", "a@x.example"),
            aiosmtplib.SMTPRecipientRefused(450, "4.2.0 greylisted", "b@x.example"),
        ]
    )
    refusal = classify(mixed, "relay:25")
    assert not refusal.permanent
    assert "<a@x.example>: 550 5.1.1 unknown" in refusal.reason


def test_network_and_tls_failures_are_temporary() -> None:
    for exc in (ConnectionRefusedError(111, "refused"), TimeoutError(), ssl.SSLError("bad")):
        assert classify(exc, "relay:25").permanent is False
    with pytest.raises(KeyError):  # a bug is not a delivery failure: it propagates
        classify(KeyError("x"), "relay:25")


def test_next_hop_forms() -> None:
    assert parse_next_hop("relay.example") == Hop("relay.example", 25)
    assert parse_next_hop("Relay.Example.:587") == Hop("relay.example", 587)
    assert parse_next_hop("[2001:db8::1]:26") == Hop("2001:db8::1", 26)
    for bad in ("relay:0", "relay:x", "", "a b", "[::1"):
        with pytest.raises(ValueError):
            parse_next_hop(bad)


def test_the_most_specific_entry_wins() -> None:
    table = TransportTable(
        [
            Entry(("bank.example",), "mx", TlsLevel.SECURE),
            Entry((".bank.example",), "relay.bank.example:25", TlsLevel.VERIFY),
            Entry(("*",), "", TlsLevel.ENCRYPT),
        ],
        relay=Hop("relay.example", 25),
        tls=TlsLevel.MAY,
    )
    d = table.lookup("a@Bank.Example")
    assert (d.hop, d.tls, d.tls_match) == (
        Hop("bank.example", 25, mx=True),
        TlsLevel.SECURE,
        ("bank.example", ".bank.example"),
    )
    assert not d.authenticate
    d = table.lookup("a@eu.bank.example")
    assert (d.hop, d.tls, d.tls_match) == (
        Hop("relay.bank.example", 25),
        TlsLevel.VERIFY,
        ("relay.bank.example",),
    )
    d = table.lookup("a@other.example")
    assert (d.hop, d.tls, d.authenticate) == (Hop("relay.example", 25), TlsLevel.ENCRYPT, True)
    plain = TransportTable([], relay=Hop("relay.example", 25), tls=TlsLevel.MAY)
    assert plain.lookup("a@x.example").tls is TlsLevel.MAY


@pytest.mark.parametrize(
    ("configured", "recipient"),
    [
        ("straße.example", "jörg@straße.example"),
        ("xn--strae-oqa.example", "jörg@STRAßE.example"),
        ("straße.example", "joerg@xn--strae-oqa.example"),
        ("büro.example", "a@BÜRO.example"),
    ],
)
def test_an_internationalized_domain_is_one_domain_in_either_spelling(
    configured: str, recipient: str
) -> None:
    """A recipient at an internationalized domain finds its entry whichever spelling the
    entry and the address use, and its MX is asked for by the A-label the SMS domains are
    read with (UTS 46, IDNA2008): `straße` is `xn--strae-oqa`, never IDNA2003's
    `strasse` — another domain, whose MX would get the notice."""
    table = TransportTable(
        [Entry((configured,), "mx", TlsLevel.VERIFY)],
        relay=Hop("relay.example", 25),
        tls=TlsLevel.MAY,
    )
    d = table.lookup(recipient)
    assert d.tls is TlsLevel.VERIFY, d
    expected = "xn--strae-oqa.example" if "stra" in configured else "xn--bro-hoa.example"
    assert d.hop == Hop(expected, 25, mx=True)
    plain = TransportTable([], relay=Hop("relay.example", 25), tls=TlsLevel.MAY, mx_port=25)
    assert plain.lookup(recipient).hop == Hop("relay.example", 25)


def test_certificate_names() -> None:
    assert names_match(["mx1.bank.example"], [".bank.example"])
    assert names_match(["bank.example"], ["bank.example", ".bank.example"])
    assert names_match(["*.bank.example"], [".bank.example"])
    assert names_match(["*.bank.example"], ["mx.bank.example"])
    assert not names_match(["*.bank.example"], ["a.mx.bank.example"])
    assert not names_match(["evilbank.example"], [".bank.example", "bank.example"])
    assert not names_match(["bank.example.evil"], ["bank.example"])
    assert not names_match([], ["bank.example"])
