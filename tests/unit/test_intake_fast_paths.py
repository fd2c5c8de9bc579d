"""The intake's shortcuts give what the full work gives: the list-name check before the
split, the automatic-mail check of marker headers only, the remembered client networks, the
line-ending check by counting."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

from bridge.intake.access import Networks, client_in
from bridge.intake.addresses import PREVIEW_PREFIX, RecipientError, split_address
from bridge.intake.hygiene import (
    _BARE,
    _UNPRINTABLE,
    AUTO_MARKERS,
    AUTO_REPLY_SUBJECT,
    _fields,
    automatic_reason,
    bare_line_ending,
    normalise_line_endings,
)
from bridge.intake.listing import _LIST_NAME, list_name
from bridge.text.charset import decode_header_value
from bridge.text.mime import MailText, extract

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
DOMAINS = ("eu.rsms.net", "sms.example.com")


def _list_name_split_first(address: str, domains: tuple[str, ...]) -> str | None:
    """Every address split and checked (the form without the shortcut)."""
    try:
        local, domain = split_address(address)
    except RecipientError:
        return None
    name = local.lower()
    if domain not in domains or name.startswith(PREVIEW_PREFIX) or not _LIST_NAME.fullmatch(name):
        return None
    return name


def test_list_names_are_those_of_the_split_address() -> None:
    locals_ = [
        "team",
        "Team",
        "on-call",
        "+491701234567",
        "00491701234567",
        "0170 1234567",
        "491701234567",
        "1team",
        "+team",
        "preview+team",
        "preview+4917012",
        "SMS=+4917",
        "t",
        "a" * 64,
        "a" * 65,
        "x.y_z-1",
        "",
        " ",
        "<team",
        '"team',
        '"+49"',
        "team>",
    ]
    addresses = []
    for local, domain in itertools.product(locals_, [*DOMAINS, "other.example", "EU.RSMS.NET"]):
        for shape in (
            "{l}@{d}",
            "<{l}@{d}>",
            '"{l}"@{d}',
            '<"{l}"@{d}>',
            " {l}@{d} ",
            "<<{l}@{d}>>",
            '""{l}""@{d}',
            "{l}@{d}>",
            "<{l}@{d}",
            "{l}",
            "@{d}",
        ):
            addresses.append(shape.format(l=local, d=domain))
    rng = random.Random(18)
    alphabet = 'ab+09<>"@. -_'
    addresses += ["".join(rng.choices(alphabet, k=rng.randint(0, 14))) for _ in range(20_000)]
    shortcut = 0
    for address in addresses:
        assert list_name(address, DOMAINS) == _list_name_split_first(address, DOMAINS), address
        first = address.strip().lstrip('<"')[:1]
        shortcut += first != "" and first in "+0123456789"
    assert shortcut > 1_000


def _automatic_reason_all_fields(mail: MailText) -> str | None:
    """Every header field collected, then each marker looked up (the form without the filter)."""
    fields: dict[str, list[str]] = {}
    for name, value in _fields(mail):
        fields.setdefault(name.lower(), []).append(value)
    auto_subject: bool | None = None
    for marker in AUTO_MARKERS:
        for raw in fields.get(marker.header.lower(), ()):
            value = decode_header_value(raw)
            if not marker.value.search(value):
                continue
            if marker.needs_auto_subject:
                if auto_subject is None:
                    auto_subject = AUTO_REPLY_SUBJECT.match(mail.subject) is not None
                if not auto_subject:
                    continue
            shown = _UNPRINTABLE.sub("?", value.strip().lower())[:60]
            return f"it is {marker.what} ({marker.header}: {shown})"
    return None


def test_automatic_reasons_are_those_of_all_header_fields() -> None:
    raws = [eml.read_bytes() for eml in sorted(CORPUS.glob("*.eml"))]
    values = [
        "yes",
        "no",
        "auto-replied",
        "bulk",
        "List",
        "auto_reply",
        "reply",
        "true",
        "all",
        "OOF",
        "9; Autoresponder",
        "autoresponder@x",
        "",
        "=?utf-8?q?bulk?=",
    ]
    for marker in AUTO_MARKERS:
        for value, subject in itertools.product(values, ("Tor 4", "Automatic reply: Tor")):
            for name in (marker.header, marker.header.upper(), marker.header.lower()):
                raws.append(
                    f"From: a@example.com\r\nSubject: {subject}\r\n{name}: {value}\r\n"
                    "X-Other: 1\r\n\r\nbody\r\n".encode()
                )
    raws.append(b"From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n")
    found = 0
    for raw in raws:
        try:
            mail = extract(raw)
        except ValueError:
            continue
        got = automatic_reason(mail)
        assert got == _automatic_reason_all_fields(mail), raw
        found += got is not None
    bare = MailText("s", "b", None, "", "auto-replied", None, 0, 0)  # no header fields kept
    assert automatic_reason(bare) is not None
    assert found > 100


def test_remembered_client_networks_answer_as_the_networks_do() -> None:
    cidrs = [(), ("10.0.0.0/8",), ("192.0.2.0/24", "2001:db8::/32"), ("127.0.0.1/32", "::1/128")]
    ips = [
        "10.1.2.3",
        "11.0.0.1",
        "192.0.2.77",
        "2001:db8::5",
        "::ffff:192.0.2.9",
        "::ffff:10.0.0.1",
        "fe80::1%eth0",
        "127.0.0.1",
        "::1",
        "",
        "not an ip",
        "10.0.0.256",
        "2001:db9::1",
    ]
    for _ in range(2):  # the second round is answered from memory
        for networks, ip in itertools.product(cidrs, ips):
            assert client_in(networks, ip) == (ip in Networks(networks)), (networks, ip)


def _bare_by_regex(raw: bytes) -> str | None:
    """The first bare CR, bare LF or NUL as the pattern alone finds it (no counting first)."""
    match = _BARE.search(raw)
    return (
        None
        if match is None
        else {b"\n": "bare LF", b"\r": "bare CR", b"\x00": "NUL"}[match.group()]
    )


def test_line_ending_faults_are_those_the_pattern_finds() -> None:
    mails = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]
    mails += [normalise_line_endings(raw) for raw in mails]
    rng = random.Random(18)
    alphabet = [b"a", b"\r", b"\n", b"\r\n", b"\x00", b".", b"\r\r\n", b"\n\r"]
    mails += [b"".join(rng.choices(alphabet, k=rng.randint(0, 12))) for _ in range(20_000)]
    mails += [b"".join(p) for n in range(4) for p in itertools.product(alphabet[:6], repeat=n)]
    outcomes = {None: 0, "bare LF": 0, "bare CR": 0, "NUL": 0}
    for raw in mails:
        found = bare_line_ending(raw)
        assert found == _bare_by_regex(raw), raw[:200]
        outcomes[found] += 1
    assert all(outcomes.values()), outcomes  # every answer is covered
