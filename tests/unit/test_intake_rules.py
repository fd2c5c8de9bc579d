"""Pure intake rules: DSN parameters, hygiene, access, number runs, reply rewriting."""

from __future__ import annotations

import pytest

from bridge.intake.access import ConnectionLimiter, CustomerAccess, Networks, client_block
from bridge.intake.destinations import sequential_run
from bridge.intake.dsn_params import (
    DsnParamError,
    parse_mail_dsn,
    parse_rcpt_dsn,
    split_params,
    wants_dsn,
)
from bridge.intake.hygiene import bare_line_ending, dedupe_key, loop_reason, normalise_line_endings
from bridge.intake.server import _rewrite
from bridge.notices.xtext import xtext_decode, xtext_encode
from bridge.text.mime import MailText


def test_split_params_keeps_case_and_leaves_the_rest_for_aiosmtpd() -> None:
    arg, found = split_params("<a@b> ret=hdrs ENVID=Sap+2B1 SIZE=100", frozenset({"RET", "ENVID"}))
    assert arg == "<a@b> SIZE=100"
    assert found == {"RET": "hdrs", "ENVID": "Sap+2B1"}
    assert split_params("<a@b>", frozenset({"RET"})) == ("<a@b>", {})


def test_mail_and_rcpt_dsn_parameters() -> None:
    assert parse_mail_dsn({"RET": "hdrs", "ENVID": "Sap+2B1"}).ret == "HDRS"
    assert parse_mail_dsn({"ENVID": "Sap+2B1"}).envid == "Sap+2B1"  # stored as received
    assert xtext_decode("Sap+2B1") == "Sap+1"
    assert xtext_encode("SMS=+49") == "SMS+3D+2B49"
    assert xtext_decode(xtext_encode("SMS=+49 x")) == "SMS=+49 x"
    rcpt = parse_rcpt_dsn({"NOTIFY": "success,Failure", "ORCPT": "rfc822;SMS=+2B49@x"})
    assert rcpt.notify == ("SUCCESS", "FAILURE") and rcpt.orcpt == "rfc822;SMS=+2B49@x"
    assert parse_rcpt_dsn({"NOTIFY": "NEVER"}).notify == ("NEVER",)
    for bad in ({"NOTIFY": "NEVER,SUCCESS"}, {"NOTIFY": "SOMETIMES"}, {"ORCPT": "no-type"}):
        with pytest.raises(DsnParamError):
            parse_rcpt_dsn(bad)
    with pytest.raises(DsnParamError):
        parse_mail_dsn({"RET": "ALL"})


@pytest.mark.parametrize(
    "raw",
    [
        "SMS=+491701234567@eu.rsms.net",  # '=' is never in xtext
        "+491701234567@sms.example",  # +49 would be 'I', which an encoder never writes so
        "+447700900123@sms.example",
        "SMS=+12025550123@eu.rsms.net",
        "Sap+41",
    ],
)
def test_a_parameter_sent_without_xtext_is_taken_as_written(raw: str) -> None:
    assert xtext_decode(raw) == raw
    assert xtext_decode(xtext_encode(raw)) == raw  # and the encoded form still decodes


def test_a_half_encoded_parameter_has_its_signs_read() -> None:
    # '+' encoded, '=' not: the + is read, the raw = kept
    assert xtext_decode("SMS=+2B491701234567@x") == "SMS=+491701234567@x"
    assert xtext_decode("a+0D+0Ab") == "a\r\nb"  # codes of controls are read (and written back)


def test_wants_dsn_defaults_to_failure_only() -> None:
    assert wants_dsn(None, "FAILURE") and not wants_dsn(None, "SUCCESS")
    assert wants_dsn(("SUCCESS",), "SUCCESS") and not wants_dsn(("NEVER",), "FAILURE")


@pytest.mark.parametrize(
    ("raw", "found"),
    [
        (b"a\r\nb\r\n", None),
        (b"a\nb\r\n", "bare LF"),
        (b"a\rb\r\n", "bare CR"),
        (b"a\r\n\x00\r\n", "NUL"),
    ],
)
def test_bare_line_endings(raw: bytes, found: str | None) -> None:
    assert bare_line_ending(raw) == found
    assert bare_line_ending(normalise_line_endings(raw)) is None


def _mail(**kw: object) -> MailText:
    base: dict[str, object] = {
        "subject": "s", "body": "b", "message_id": "<m@x>", "from_header": "a@b",
        "auto_submitted": None, "precedence": None, "received_count": 1, "attachments": 0,
    }  # fmt: skip
    base.update(kw)
    return MailText(**base)  # type: ignore[arg-type]


def test_loop_reasons() -> None:
    assert loop_reason(_mail(), 30) is None
    assert loop_reason(_mail(auto_submitted="no"), 30) is None
    assert "Auto-Submitted" in (loop_reason(_mail(auto_submitted="auto-replied"), 30) or "")
    assert "Precedence" in (loop_reason(_mail(precedence="List"), 30) or "")
    assert "mail servers" in (loop_reason(_mail(received_count=30), 30) or "")


def test_dedupe_key_ignores_recipient_order_and_case() -> None:
    a = dedupe_key("<m@x>", "A@b", ["+491@x", "+492@x"])
    assert a == dedupe_key("<m@x>", "a@B", ["+492@X", "+491@x"])
    assert a != dedupe_key("<m@x>", "a@b", ["+491@x"])
    assert dedupe_key(None, "a@b", ["+491@x"]) is None


def test_networks_and_connection_limits() -> None:
    nets = Networks(["10.0.0.0/8", "::1/128"])
    assert "10.1.2.3" in nets and "::1" in nets and "::ffff:10.0.0.1" in nets
    assert "11.0.0.1" not in nets and "junk" not in nets
    limiter = ConnectionLimiter(per_ip=2, per_ip_per_minute=3, total=100)
    assert limiter.admit("1.1.1.1", now=0) is None
    assert limiter.admit("1.1.1.1", now=0) is None
    assert "too many connections from" in (limiter.admit("1.1.1.1", now=0) or "")
    limiter.release("1.1.1.1")
    assert limiter.admit("1.1.1.1", now=1) is None
    limiter.release("1.1.1.1")
    assert "per minute" in (limiter.admit("1.1.1.1", now=2) or "")
    assert limiter.admit("1.1.1.1", now=61) is None


@pytest.mark.parametrize(
    ("ip", "block"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # a dual-stack socket's IPv4 client
        ("fe80::1%eth0", "fe80::/64"),
        ("::1", "::/64"),
        ("not an address", "not an address"),
    ],
)
def test_a_client_is_counted_by_its_address_or_its_ipv6_64(ip: str, block: str) -> None:
    assert client_block(ip) == block


def test_one_ipv6_client_cannot_spread_its_connections_over_its_64() -> None:
    """A host given a /64 may use any of its 2**64 addresses: counted one by one, the
    caps per address held nothing. Its addresses share one count; the next /64 has its own."""
    limiter = ConnectionLimiter(per_ip=2, per_ip_per_minute=100, total=100)
    assert limiter.admit("2001:db8:0:1::a", now=0) is None
    assert limiter.admit("2001:db8:0:1::b", now=0) is None
    refused = limiter.admit("2001:db8:0:1::c", now=0) or ""
    assert "too many connections from 2001:db8:0:1::c (counted with its 2001:db8:0:1::/64)" in (
        refused
    )
    assert limiter.admit("2001:db8:0:2::a", now=0) is None  # another /64
    limiter.release("2001:db8:0:1::a")
    assert limiter.admit("2001:db8:0:1::d", now=0) is None
    rated = ConnectionLimiter(per_ip=100, per_ip_per_minute=2, total=100)
    for n in range(2):
        assert rated.admit(f"2001:db8::{n + 1}", now=0) is None
        rated.release(f"2001:db8::{n + 1}")
    assert "per minute" in (rated.admit("2001:db8::99", now=1) or "")
    # every release found its count; a refusal leaves none
    assert rated.open("2001:db8::1") == 0 and rated.open_total == 0


def test_the_counts_of_clients_gone_for_a_minute_are_dropped() -> None:
    """Every address that ever connected kept its list of connection times: memory that
    grew with each new client for as long as the bridge ran. The counts live in a table
    of fixed size now; a client gone for a minute holds nothing in it."""
    limiter = ConnectionLimiter(per_ip=10, per_ip_per_minute=100, total=10_000)
    for n in range(1000):
        ip = f"10.0.{n // 250}.{n % 250}"
        assert limiter.admit(ip, now=1) is None
        limiter.release(ip)
    assert limiter.admit("10.9.9.9", now=2) is None  # still open at the sweep
    assert limiter.admit("10.9.9.8", now=70) is None  # a minute on: the sweep
    assert limiter.table.used_slots(now=70) == 2
    assert limiter.open("10.9.9.9") == 1 and limiter.open("10.9.9.8") == 1
    assert limiter.open("10.0.0.1") == 0 and limiter.open_total == 2


def test_customer_access_is_validated() -> None:
    access = CustomerAccess.from_settings({"access": {"networks": ["10.0.0.0/8"], "premium": True}})
    assert access.networks == ("10.0.0.0/8",) and access.premium and not access.short_codes
    assert CustomerAccess.from_settings({}) == CustomerAccess()
    with pytest.raises(ValueError, match="not an IP network"):
        CustomerAccess.from_settings({"access": {"networks": ["x"]}})
    with pytest.raises(ValueError, match="unknown keys"):
        CustomerAccess.from_settings({"access": {"colour": 1}})


def test_sequential_run() -> None:
    have = ["+491701234510", "+491701234511", "+491701234513"]
    assert sequential_run(have, "+491701234512") == 4
    assert sequential_run(have, "+491701234599") == 1
    assert sequential_run([], "11880") == 1


@pytest.mark.parametrize(
    ("aiosmtpd", "ours"),
    [
        ("250 OK", "250 2.0.0 OK"),
        ("221 Bye", "221 2.0.0 Bye"),
        ("503 Error: need MAIL command", "503 5.5.1 Error: need MAIL command"),
        (
            "552 Error: Too much mail data",
            "552 5.3.4 Message too big for this bridge (limit 99 bytes)",
        ),
        ("250 HELP", "250 HELP"),
        ("220 host ESMTP", "220 host ESMTP"),
        ("250 2.1.0 Sender ok", "250 2.1.0 Sender ok"),
    ],
)
def test_aiosmtpd_replies_are_rewritten_into_the_table(aiosmtpd: str, ours: str) -> None:
    assert _rewrite(aiosmtpd, 99).startswith(ours)


def test_country_of_numbers_and_short_codes() -> None:
    from bridge.intake.countries import country_of

    assert country_of("+491701234567") == "DE"
    assert country_of("+447400123456") == "GB"
    assert country_of("11880", "de") == "DE"  # a short code is national


@pytest.mark.parametrize(
    "arg",
    [
        "<a@b.c>",
        "<demo@example.com> SIZE=100",
        " <SMS=+491701234567@eu.rsms.net> NOTIFY=SUCCESS",
        "<a.b@c.d>  BODY=8BITMIME ",
        "<a@b.c>\tX=1",
        "<x%y@z.com>",
        "<a..b@c.d>",
        '<"x y"@c.d>',
        "<@a,@b:c@d>",
        "<a@b.c.>",
        "<a(comment)@b.c>",
        "<a@[1.2.3.4]>",
        "a@b.c",
        "<>",
    ],
)
def test_fast_address_parsing_agrees_with_aiosmtpd(arg: str) -> None:
    from aiosmtpd.smtp import SMTP

    from bridge.intake.server import BridgeSMTP

    theirs = SMTP.__new__(SMTP)
    ours = BridgeSMTP.__new__(BridgeSMTP)
    theirs.local_part_limit = ours.local_part_limit = 0
    assert BridgeSMTP._getaddr(ours, arg) == SMTP._getaddr(theirs, arg)
