"""The SSRF guard decides on the address a connection really reaches, for every IPv6 form;
a push target is checked when the numbers file is loaded; Retry-After is read safely."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from bridge.inbound.config import NumbersError, parse_actions, parse_numbers
from bridge.push.guard import PushBlocked, check_address, effective_address, vet
from bridge.push.target import PushAction
from bridge.push.worker import retry_after


@pytest.mark.parametrize(
    "address",
    [
        "::127.0.0.1",  # IPv4-compatible (deprecated): loopback over IPv6
        "::8.8.8.8",  # IPv4-compatible, even of a public address
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:8.8.8.8",
        "::ffff:0:7f00:1",  # IPv4-translated ::ffff:0:a.b.c.d
        "::ffff:0:808:808",
        "64:ff9b::7f00:1",  # NAT64 well-known prefix to loopback
        "64:ff9b::a9fe:a9fe",  # NAT64 to the cloud metadata address
        "64:ff9b::a00:1",  # NAT64 to 10.0.0.1
        "64:ff9b:1::7f00:1",  # NAT64 local-use prefix
        "64:ff9b:1::808:808",
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:808:808::1",  # 6to4, even of a public address
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "fec0::1",  # site-local (deprecated)
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fe80::1%1",
        "ff02::1",
        "100::1",
        "2001:db8::1",
        "3fff::1",
        "::",
        "::1",
        "0.0.0.0",
        "127.0.0.2",
        "169.254.169.254",
        "192.0.0.8",
        "192.88.99.1",
        "198.18.0.1",
        "203.0.113.5",
        "240.0.0.1",
        "255.255.255.255",
    ],
)
def test_every_form_of_a_non_public_destination_is_refused(address: str) -> None:
    with pytest.raises(PushBlocked):
        check_address(address)


@pytest.mark.parametrize(
    ("address", "canonical"),
    [
        ("8.8.8.8", "8.8.8.8"),
        ("2606:4700:4700::1111", "2606:4700:4700::1111"),
        ("2606:4700:4700:0:0:0:0:1111", "2606:4700:4700::1111"),
        ("64:ff9b::808:808", "64:ff9b::808:808"),  # DNS64 answer for an IPv4-only public host
    ],
)
def test_public_destinations_pass_in_canonical_form(address: str, canonical: str) -> None:
    assert check_address(address) == canonical


def test_nat64_is_judged_by_the_ipv4_address_it_embeds() -> None:
    assert effective_address("64:ff9b::c000:221") == ipaddress.IPv4Address("192.0.2.33")
    assert effective_address("2606:4700::1") == ipaddress.IPv6Address("2606:4700::1")


@pytest.mark.parametrize(
    "url",
    [
        "https://[::127.0.0.1]/",
        "https://[64:ff9b::7f00:1]/",
        "https://[64:ff9b:1::7f00:1]/",
        "https://[::ffff:0:7f00:1]/",
        "https://[fec0::1]/",
        "https://[2002:7f00:1::]/",
    ],
)
async def test_push_urls_with_embedded_loopback_are_refused_before_connecting(url: str) -> None:
    with pytest.raises(PushBlocked):
        await vet(url)


async def test_vet_returns_the_checked_address_to_connect_to() -> None:
    vetted = await vet("https://[2606:4700:4700:0:0:0:0:1111]:8443/hook?a=1")
    assert (vetted.address, vetted.port, vetted.path) == ("2606:4700:4700::1111", 8443, "/hook?a=1")


# --- a push target is checked when the numbers file is loaded --------------------------

_TARGET = """
[[customer]]
name = "demo"

[[number]]
number = "+4915550000009"
customer = "demo"

[[number.actions]]
type = "push"
"""


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        ('url = "ftp://hooks.example/x"', "scheme 'ftp' not allowed"),
        ('url = "https://"', "the URL has no host"),
        ('url = "https://user:pw@hooks.example/"', "credentials in the URL"),
        ('url = "https://0x7f.1/"', "numeric address in an unusual form"),
        ('url = "https://hooks.example:99999/"', "bad port"),
        ('url = "https://hooks.example/"\nheaders = {"X Tenant" = "a"}', "a header name is"),
        ('url = "https://hooks.example/"\nheaders = {"X-Tenant:" = "a"}', "a header name is"),
        ('url = "https://hooks.example/"\nheaders = {Host = "evil.example"}', "sets it on every"),
        ('url = "https://hooks.example/"\nheaders = {content-length = "0"}', "sets it on every"),
        ('url = "https://hooks.example/"\nheaders = {X-A = "a\\r\\nX-B: b"}', "line break"),
        (
            'url = "https://hooks.example/"\nauth = "bearer"\ntoken = "t"\n'
            'headers = {authorization = "x"}',
            "for auth = 'bearer'",
        ),
        (
            'url = "https://hooks.example/"\nauth = "hmac"\nsecret = "s"\n'
            'headers = {X-Mailsms-Signature = "x"}',
            "for auth = 'hmac'",
        ),
        ('url = "https://hooks.example/"\nsignature_header = "X Sig"', "signature_header"),
        ('url = "https://hooks.example/"\nauth = "bearer"\ntoken = "a\\nb"', "token: has a line"),
        ('url = "https://hooks.example/"\nauth = "basic"\nusername = "a:b"', "may not contain ':'"),
        ('url = "https://hooks.example/"\npassword = "p\\r"', "password: has a line"),
    ],
)
def test_a_push_target_is_refused_at_load_with_the_reason(lines: str, says: str) -> None:
    with pytest.raises(NumbersError, match=r"number\.0\.actions\.0\.push: .*") as caught:
        parse_numbers(_TARGET + lines)
    assert says in str(caught.value)


def test_a_good_target_loads_and_a_stored_one_is_read_back_unchecked() -> None:
    loaded = parse_numbers(
        _TARGET + 'url = "http://crm.example:8080/sms?a=1"\nheaders = {X-Tenant = "a\\tb"}\n'
        'auth = "basic"\nusername = "u"\npassword = "p w"'
    )
    [action] = loaded.number[0].actions
    assert isinstance(action, PushAction) and action.headers == {"X-Tenant": "a\tb"}
    stored = {"type": "push", "url": "https://hooks.example/", "headers": {"Host": "x"}}
    with pytest.raises(ValidationError, match="the bridge sets it"):
        PushAction.model_validate(stored)
    [read_back] = parse_actions([stored])  # routing and the portal read a stored number as is
    assert isinstance(read_back, PushAction) and read_back.headers == {"Host": "x"}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("99999999999", 30 * 86_400.0),  # at most 30 days
        ("Sat, 05 Dec 2026 13:00:00 GMT", 3_600.0),
        ("Sat, 05 Dec 2026 11:00:00 GMT", 0.0),  # in the past: at once
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("١٢٠", None),  # Arabic-Indic digits are no HTTP delta-seconds
        ("9" * 5_000, None),  # past int()'s digit limit: not a crash
        ("Sat, 05 Dec 2026 13:00:00", None),  # a date without its zone
    ],
)
def test_retry_after_reads_seconds_and_dates(value: str, seconds: float | None) -> None:
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    assert retry_after(value, now) == seconds
