"""Header values from outside data: checked addresses, cleaned names, subjects and DSN fields."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import Message
from typing import Any, cast

import pytest

from bridge.mail_address import header_address
from bridge.notices import headers
from bridge.notices.dsn import build_dsn
from bridge.notices.render import DEFAULT_TEMPLATES, Renderer
from tests.helpers import DSN_CONTEXT, STATUS_CONTEXT

BRIDGE_DOMAINS = ("eu.rsms.net", "bridge.example")
RECIPIENT = "alice@corp.example"
_ADDRESS = re.compile(r"[^\s<>\"'@,;:()]+@[^\s<>\"'@,;:()]+")


def _renderer() -> Renderer:
    return Renderer(
        DEFAULT_TEMPLATES,
        from_address="sms@bridge.example",
        from_name="SMS Bridge",
        hostname="bridge.example",
    )


def _sms2mail(source: str, **extra: Any) -> dict[str, Any]:
    """The context the inbound action builds, for the given raw SMS sender."""
    sender = headers.sender_label(source)
    return {
        "inbound_id": 1,
        "source": sender,
        "destination": "+4915550000001",
        "text": "hello",
        "keyword": "",
        "customer": "",
        "received_at": "2026-11-22 10:00:00 UTC",
        "reply_to": headers.number_address(source, "eu.rsms.net") or "",
        "from_name": f"SMS from {sender}",
        "others": [],
        "routed_by": "fallback",
        "original_text": "",
        "original_subject": "",
        "order_id": "",
        "in_reply_to": "",
        **extra,
    }


def _header_block(data: bytes) -> str:
    return data.split(b"\n\n", 1)[0].decode("ascii")


def _foreign_addresses(block: str) -> list[str]:
    """Address-like tokens in a header block outside the bridge's domains and the recipient."""
    found = _ADDRESS.findall(block)
    return [
        a
        for a in found
        if a != RECIPIENT and a.rpartition("@")[2].lower().rstrip(">") not in BRIDGE_DOMAINS
    ]


@pytest.mark.parametrize("via_bytes", [True, False])
def test_an_alphanumeric_sender_puts_no_foreign_address_into_any_header(via_bytes: bool) -> None:
    r = _renderer()
    context = _sms2mail("<x@evil.example>")
    if via_bytes:
        data = r.render_bytes("sms2mail", RECIPIENT, context)
    else:
        data = r.render("sms2mail", RECIPIENT, context).as_bytes()
    block = _header_block(data)
    assert _foreign_addresses(block) == [], block
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Reply-To"] is None  # nobody to answer: no reply address at all
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "no reply address" in text and "Reply to this mail" not in text


def test_a_number_sender_gets_its_reply_address() -> None:
    data = _renderer().render_bytes("sms2mail", RECIPIENT, _sms2mail("+491701234567"))
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Reply-To"] == "+491701234567@eu.rsms.net"
    assert "Reply to this mail" in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_a_stored_context_with_a_forged_reply_address_loses_it() -> None:
    """Notices queued before the check carry the raw sender: the renderer checks again."""
    context = _sms2mail("+491701234567")
    context |= {"reply_to": "<x@evil.example>@eu.rsms.net", "from_name": "SMS <x@evil.example>"}
    data = _renderer().render_bytes("sms2mail", RECIPIENT, context)
    assert _foreign_addresses(_header_block(data)) == []
    assert b"Reply-To" not in data.split(b"\n\n", 1)[0]


@pytest.mark.parametrize(
    "field",
    [
        {"source": "AB\r\nBcc: x@evil.example"},
        {"from_name": "SMS\r\nBcc: x@evil.example"},
        {"to_name": "Alice\r\nBcc: x@evil.example"},
        {"in_reply_to": "<a@b.example>\r\nBcc: x@evil.example"},
        {"original_subject": "Re:\r\nBcc: x@evil.example", "order_id": "A.1"},
    ],
)
def test_cr_lf_from_outside_never_stops_a_notice_nor_adds_a_header(field: dict[str, str]) -> None:
    r = _renderer()
    context = _sms2mail("+491701234567") | field
    for data in (
        r.render_bytes("sms2mail", RECIPIENT, context),
        r.render("sms2mail", RECIPIENT, context).as_bytes(),
    ):
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert msg["Bcc"] is None and msg.defects == []
        names = [line.split(":")[0] for line in _header_block(data).splitlines() if line[:1] != " "]
        assert names[:7] == [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "Auto-Submitted",
            "Reply-To",
        ]
        assert set(names[7:]) <= {"In-Reply-To", "References", "MIME-Version", "Content-Type"}


def test_a_status_notice_with_a_control_character_in_the_display_name_renders() -> None:
    context = STATUS_CONTEXT | {"to_name": "Bob\x00\u202e\r\n Builder", "subject": "a\rb\nc"}
    data = _renderer().render_bytes("status", RECIPIENT, context)
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["To"].addresses[0].display_name == "Bob Builder"
    assert "\r" not in msg["Subject"] and "\n" not in msg["Subject"]


@pytest.mark.parametrize(
    "lookalike",
    ["=?utf-8?q?=FF?= Grüße", "Grüße =?utf-8?b?gA==?=", "=?unknown-8bit?q?=FF=FE?= é"],
)
@pytest.mark.parametrize("field", ["subject", "to_name", "text"])
def test_text_that_reads_like_an_encoded_word_is_written_as_text(
    lookalike: str, field: str
) -> None:
    """A mail's decoded subject, a name or an SMS may hold `=?charset?q?…?=` as text: the
    mail library decoded it again when writing the header, and for undecodable octets
    could not write the notice at all (it was held)."""
    r = _renderer()
    for kind, context in (
        ("status", STATUS_CONTEXT | {field: lookalike}),
        ("sms2mail", _sms2mail("+491701234567") | {field: lookalike}),
    ):
        for data in (
            r.render_bytes(kind, RECIPIENT, context),
            r.render(kind, RECIPIENT, context).as_bytes(),
        ):
            msg = email.message_from_bytes(data, policy=email.policy.default)
            assert msg.defects == [], (kind, field)
            shown = str(msg["Subject"]) + str(msg["To"])
            assert "\ufffd" not in shown and "\udcff" not in shown, shown


def test_a_bad_recipient_address_is_a_header_error() -> None:
    with pytest.raises(headers.HeaderError):
        _renderer().render_bytes(
            "status", "a@b.example>\r\nRCPT TO:<x@evil.example", STATUS_CONTEXT
        )


def _dsn(**extra: Any) -> dict[str, Any]:
    return {**DSN_CONTEXT, **extra}


def _dsn_fields(context: dict[str, Any]) -> dict[str, str]:
    dsn = build_dsn(context, reporting_mta="bridge.example", recipient=RECIPIENT)
    parsed = email.message_from_bytes(dsn.as_bytes(), policy=email.policy.compat32)
    fields: dict[str, str] = {}
    for part in parsed.walk():
        if part.get_content_type() == "message/delivery-status":
            for block in cast("list[Message]", part.get_payload()):
                fields.update(block.items())
    assert parsed["Bcc"] is None
    return fields


def test_cr_lf_in_dsn_parameters_are_written_xtext_encoded() -> None:
    fields = _dsn_fields(
        _dsn(
            envid="E1\r\nBcc: x@evil.example",
            orcpt="rfc822;a\r\nb@eu.rsms.net",
            diagnostic="X-SMPP; bad\r\nBcc: x@evil.example",
        )
    )
    assert fields["Original-Envelope-Id"] == "E1+0D+0ABcc:+20x@evil.example"
    assert fields["Original-Recipient"] == "rfc822;a+0D+0Ab@eu.rsms.net"
    assert fields["Diagnostic-Code"] == "X-SMPP; bad Bcc: x@evil.example"
    assert "Bcc" not in fields


def test_printable_dsn_parameters_stay_as_given() -> None:
    fields = _dsn_fields(_dsn(envid="SAP+4711", orcpt="rfc822;SMS=+491701234567@eu.rsms.net"))
    assert fields["Original-Envelope-Id"] == "SAP+4711"
    assert fields["Original-Recipient"] == "rfc822;SMS=+491701234567@eu.rsms.net"


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("alice@corp.example", "alice@corp.example"),
        ("Alice@Corp.Example", "Alice@corp.example"),
        ("mailsms@localhost", "mailsms@localhost"),
        ("svc@dc1.corp.local", "svc@dc1.corp.local"),
        ("a@bü.example", "a@" + "bü.example".encode("idna").decode()),
        ("<x@evil.example>@eu.rsms.net", None),
        ("x@evil.example>\r\nBcc: y@z.example", None),
        ('"x y"@corp.example', None),
        ("x@[127.0.0.1]", None),
        ("Alice <alice@corp.example>", None),
        ("a@-bad.local", None),
        ("", None),
    ],
)
def test_mail_address(address: str, expected: str | None) -> None:
    assert header_address(address) == expected


@pytest.mark.parametrize(
    ("source", "label", "reply"),
    [
        ("+491701234567", "+491701234567", "+491701234567@eu.rsms.net"),
        ("<x@evil.example>", "xevil.example", None),
        ("ACME Bank", "ACME Bank", None),
        ("12345", "12345", None),
        ("01701234567", "01701234567", None),
        ("+0123", "+0123", None),
        ("A\r\nB", "A B", None),
        ("", "(no sender)", None),
    ],
)
def test_sender_label_and_reply_address(source: str, label: str, reply: str | None) -> None:
    assert headers.sender_label(source) == label
    assert headers.number_address(source, "eu.rsms.net") == reply


def test_text_phrase_and_message_ids() -> None:
    assert headers.text("a\r\n\tb\x00c\u2028d\u202ee") == "a b c d e"
    assert headers.text("x" * 300, 10) == "x" * 9 + "…"
    assert headers.phrase('Eve "<eve@evil.example>" \\') == "Eve eveevil.example"
    assert headers.msg_ids("<a@b> junk <c@d>\r\n <e f@g>") == ["<a@b>", "<c@d>"]
    assert headers.xtext("a+b=c") == "a+b=c"
    assert headers.xtext("a+b\n") == "a+2Bb+0A"
