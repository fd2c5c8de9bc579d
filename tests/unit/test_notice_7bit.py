"""Every mail the builder writes is 7-bit: status mails (direct and with attachments) and
DSNs, whatever their texts and whatever mail a DSN returns (bridge/notices/mime.py)."""

from __future__ import annotations

import base64
import binascii
import email
import re
from email import policy
from email.message import EmailMessage, Message
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.notices import mime
from bridge.notices.dsn import build_dsn
from tests.helpers import DSN_CONTEXT

TEXTS = [
    "Grüße aus Köln",
    "Not delivered: Grüße aus Köln\nReason: the handset is off\n",
    "€ " * 100,  # one long line
    ("Übergabe um 15 Uhr, Tor 3. " * 4 + "\n") * 15,  # long lines, more than ten
]


def _head(subject: str = "SMS to +491701234567 not delivered") -> mime.Head:
    return mime.head(
        ("Jürgen Müller", "bridge@example.com"),
        [("Zoë", "alice@example.com")],
        subject,
        domain="h.t",
    )


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("attached", [False, True])
def test_a_notice_is_7bit_and_reads_back(text: str, attached: bool) -> None:
    attachments = (
        [mime.Attachment("Bericht.csv", "text/csv", f"Text\n{text}\n")] if attached else []
    )
    data = mime.alternative(_head("Grüße: " + text[:40]), text, f"<p>{text}</p>", attachments)
    assert data.isascii()
    msg = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    for part in msg.walk():
        assert part.get("Content-Transfer-Encoding", "7bit") != "8bit"
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content() == text.rstrip("\n") + "\n"
    assert text.splitlines()[0] in html.get_content()
    if attached:
        [attachment] = msg.iter_attachments()
        assert attachment.get_payload(decode=True) == f"Text\n{text}\n".encode()


UTF8_HEADERS = "From: Jürgen <j@example.com>\r\nSubject: Grüße\r\nX-Long: " + "ä" * 60 + "\r\n"
ORIGINALS = {
    "ascii": b"Subject: alarm\r\nMessage-ID: <m1@c.example>\r\n\r\nPump P-101\r\n",
    "ascii-long-header": b"Subject: " + b"alarm " * 30 + b"\r\n\r\nPump\r\n",
    "utf8-headers": (UTF8_HEADERS + "\r\nBody\r\n").encode(),
    "8bit-body": b"Subject: x\r\nContent-Transfer-Encoding: 8bit\r\n\r\nR\xc3\xbcckruf \r\n",
    "latin1": b"Subject: Gr\xfc\xdfe\r\n\r\nK\xf6ln\r\n",  # octets that are not UTF-8
}


def _returned_part(report: Message) -> tuple[str, str, bytes]:
    """(content type, transfer encoding, decoded octets) of the returned part, from the
    written bytes (the parser reads a message/global* body as a message of its own)."""
    data = report.as_bytes()
    assert data.isascii()
    boundary = report.get_boundary()
    assert boundary is not None
    raw = data.split(b"\n--" + boundary.encode())[3].removeprefix(b"\n")
    head, _, body = raw.partition(b"\n\n")
    part = email.message_from_bytes(head + b"\n\n")
    cte = str(part["Content-Transfer-Encoding"])
    decoded = binascii.a2b_qp(body) if cte == "quoted-printable" else body
    return part.get_content_type(), cte, decoded


@pytest.mark.parametrize("name", sorted(ORIGINALS))
@pytest.mark.parametrize("full", [False, True])
def test_a_delivery_report_returns_any_mail_7bit(name: str, full: bool) -> None:
    """ASCII: message/rfc822 or text/rfc822-headers as ever (a long header line
    quoted-printable); 8-bit octets: message/global or message/global-headers,
    quoted-printable, the mail's octets as they came (headers not UTF-8: U+FFFD)."""
    original = ORIGINALS[name]
    returned = original if full else original[: original.index(b"\r\n\r\n") + 2]
    report = mime.delivery_report(
        _head(), "Ihre SMS konnte nicht zugestellt werden: Empfänger unbekannt.",
        [("Reporting-MTA", "dns; h.t")], [("Final-Recipient", "rfc822; x@h.t")],
        returned, full=full,
    )  # fmt: skip
    content_type, cte, decoded = _returned_part(report)
    eight_bit = not returned.isascii()
    if full:
        assert content_type == ("message/global" if eight_bit else "message/rfc822")
        assert decoded == returned.replace(b"\r\n", b"\n")
    else:
        assert content_type == "message/global-headers" if eight_bit else "text/rfc822-headers"
        text = returned.decode("utf-8", "replace").replace("\r\n", "\n")
        assert decoded.decode("utf-8") == text
    if eight_bit or (name == "ascii-long-header" and not full):
        assert cte == "quoted-printable"
    else:
        assert cte == "7bit"


def test_a_dsn_with_a_diagnostic_that_is_not_ascii_is_7bit() -> None:
    """An SMSC's error text in German reaches the human-readable part (quoted-printable)
    as it came and the Diagnostic-Code field as ASCII: the DSN is ASCII."""
    context = {
        **DSN_CONTEXT,
        "diagnostic": "X-SMPP; Empfänger unbekannt",
        "original": base64.b64encode(b"Subject: x\r\n\r\n").decode(),
    }
    dsn = build_dsn(context, reporting_mta="bridge.test", recipient="alice@example.com")
    data = dsn.as_bytes()
    assert data.isascii()
    human = email.message_from_bytes(data, policy=policy.default).get_body(("plain",))
    assert human is not None and "Empfänger unbekannt" in human.get_content()
    assert _status_fields(dsn)["Diagnostic-Code"] == "X-SMPP; Empfaenger unbekannt"


def _status_fields(dsn: Message) -> dict[str, str]:
    """The delivery-status fields as a DSN reader reads them from the written bytes."""
    data = dsn.as_bytes()
    assert data.isascii()
    parsed = email.message_from_bytes(data, policy=policy.compat32)
    [status] = [p for p in parsed.walk() if p.get_content_type() == "message/delivery-status"]
    fields: dict[str, str] = {}
    for block in cast("list[Message]", status.get_payload()):
        fields.update((name, re.sub(r"\r?\n(?=[ \t])", "", str(v))) for name, v in block.items())
    assert not [v for v in fields.values() if "=?" in v]  # never RFC 2047 encoded words
    return fields


def _dsn(**context: Any) -> Message:
    return build_dsn(
        {**DSN_CONTEXT, **context}, reporting_mta="bridge.test", recipient="alice@example.com"
    )


_HEXPOINT = re.compile(r"\\x\{([0-9A-F]+)\}")


def _utf8_address(xtext: str) -> str:
    """A reader's decoding of RFC 6533's utf-8-addr-xtext."""
    return _HEXPOINT.sub(lambda m: chr(int(m.group(1), 16)), xtext)


@pytest.mark.parametrize(
    ("address", "field"),
    [
        ("+491701234567@eu.rsms.net", "rfc822; +491701234567@eu.rsms.net"),
        # an SMTPUTF8 client wrote the bridge's domain as a U-label: the same address
        ("SMS=+491701234567@sms.büro.example", "rfc822; SMS=+491701234567@sms.xn--bro-hoa.example"),
        # its A-label as the SMS domains are matched (bridge/domains.py: lower-cased)
        ("SMS=+491701234567@SMS.Büro.Example", "rfc822; SMS=+491701234567@sms.xn--bro-hoa.example"),
        # UTS 46 / IDNA2008: ß is kept (xn--strae-oqa), not IDNA2003's ss (another domain)
        ("SMS=+491701234567@straße.example", "rfc822; SMS=+491701234567@xn--strae-oqa.example"),
        # a local part that is not ASCII: RFC 6533's utf-8 type, 7-bit
        ("jörg@büro.example", "utf-8; j\\x{F6}rg@b\\x{FC}ro.example"),
        ("a+b=c\\d€@example.com", "utf-8; a\\x{2B}b\\x{3D}c\\x{5C}d\\x{20AC}@example.com"),
    ],
)
def test_final_recipient_is_ascii_as_rfc_6533_writes_it(address: str, field: str) -> None:
    """Was `rfc822; =?utf-8?...?=`: RFC 2047 encoded words, which no DSN reader decodes."""
    fields = _status_fields(_dsn(final_recipient=address, orcpt=""))
    assert fields["Final-Recipient"] == field
    addr_type, _, written = field.partition("; ")
    if addr_type == "utf-8":
        assert _utf8_address(written) == address


@pytest.mark.parametrize(
    ("orcpt", "field"),
    [
        ("rfc822;SMS=+491701234567@eu.rsms.net", "rfc822;SMS=+491701234567@eu.rsms.net"),
        # written with the U-label by an SMTPUTF8 client: the A-label
        ("rfc822;SMS=+4917012@sms.büro.example", "rfc822;SMS=+4917012@sms.xn--bro-hoa.example"),
        ("rfc822;jörg@example.com", "utf-8;j\\x{F6}rg@example.com"),
        # RFC 6533's own type stays so, in its 7-bit form, whichever form the client sent
        ("utf-8;j\\x{F6}rg@b\\x{FC}ro.example", "utf-8;j\\x{F6}rg@b\\x{FC}ro.example"),
        ("utf-8;jörg@büro.example", "utf-8;j\\x{F6}rg@b\\x{FC}ro.example"),
        ("rfc822;a\r\nb@x.example", "rfc822;a+0D+0Ab@x.example"),  # xtext, as before
    ],
)
def test_original_recipient_is_ascii_as_rfc_6533_writes_it(orcpt: str, field: str) -> None:
    assert _status_fields(_dsn(orcpt=orcpt))["Original-Recipient"] == field


@pytest.mark.parametrize(
    ("diagnostic", "field"),
    [
        ("X-SMPP; Empfänger unbekannt", "X-SMPP; Empfaenger unbekannt"),
        ("X-SMPP; ZUSTELLUNG GEÄNDERT, Straße", "X-SMPP; ZUSTELLUNG GEAENDERT, Strasse"),
        ("X-SMPP; délai expiré", "X-SMPP; delai expire"),
        ("X-SMPP; 送信失敗", "X-SMPP; \\x{9001}\\x{4FE1}\\x{5931}\\x{6557}"),
    ],
)
def test_a_diagnostic_code_is_ascii(diagnostic: str, field: str) -> None:
    """RFC 6533 allows UTF-8 in a Diagnostic-Code only in message/global-delivery-status;
    the human-readable part has the SMSC's text as it came."""
    dsn = _dsn(diagnostic=diagnostic)
    assert _status_fields(dsn)["Diagnostic-Code"] == field
    human = email.message_from_bytes(dsn.as_bytes(), policy=policy.default).get_body(("plain",))
    assert human is not None and diagnostic in human.get_content()


# characters an address may have that `headers.text` keeps as they are (no white space,
# no control characters, no `?` of an `=?`)
_ADDRESS_CHARS = st.characters(categories=("L", "N", "P", "S"), exclude_characters="@?")


@settings(max_examples=300, deadline=None)
@given(
    local=st.text(_ADDRESS_CHARS, min_size=1, max_size=40),
    domain=st.text(_ADDRESS_CHARS, min_size=1, max_size=40),
)
def test_any_final_recipient_reads_back(local: str, domain: str) -> None:
    """Whatever the address: the field is ASCII, and a reader gets the address back (the
    utf-8 type decoded, or the same domain in IDNA)."""
    address = f"{local}@{domain}"
    field = _status_fields(_dsn(final_recipient=address, orcpt=""))["Final-Recipient"]
    addr_type, _, written = field.partition("; ")
    if addr_type == "utf-8":
        assert _utf8_address(written) == address
    else:
        assert addr_type == "rfc822"
        local_part, _, domain_part = address.rpartition("@")
        written_local, _, written_domain = written.rpartition("@")
        assert written_local == local_part
        if domain_part.isascii():
            assert written_domain == domain_part
        else:
            assert written_domain == domain_part.encode("idna").decode("ascii")


def test_a_delivery_report_writes_a_field_that_is_not_ascii_escaped() -> None:
    """The writer's own guard: a field value that is not ASCII never becomes encoded words."""
    report = mime.delivery_report(
        _head(), "text", [("Reporting-MTA", "dns; h.t")],
        [("Final-Recipient", "rfc822; x@h.t"), ("Diagnostic-Code", "X-SMPP; Köln")],
        b"Subject: x\r\n\r\n", full=False,
    )  # fmt: skip
    assert _status_fields(report)["Diagnostic-Code"] == "X-SMPP; K\\x{F6}ln"
