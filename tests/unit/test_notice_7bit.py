"""Every mail the builder writes is 7-bit: status mails (direct and with attachments) and
DSNs, whatever their texts and whatever mail a DSN returns (bridge/notices/mime.py)."""

from __future__ import annotations

import base64
import binascii
import email
from email import policy
from email.message import EmailMessage, Message

import pytest

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
    and the Diagnostic-Code field (encoded words): the DSN is ASCII."""
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
