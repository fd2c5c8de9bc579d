"""The one MIME builder: the direct notice bytes equal `EmailMessage`'s, or it steps aside."""

from __future__ import annotations

import binascii
import email
import email.policy
import re
from email import policy, quoprimime
from email.header import decode_header, make_header
from email.message import Message
from typing import Any, Literal, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.mt.status import FINAL_ORDER_STATUSES
from bridge.notices import mime
from bridge.notices.headers import HeaderError, Mailbox
from bridge.notices.render import DEFAULT_TEMPLATES, Renderer
from tests.helpers import STATUS_CONTEXT

BASE: dict[str, Any] = STATUS_CONTEXT
SMS2MAIL_CONTEXT: dict[str, Any] = {
    "source": "+491701234567",
    "destination": "+4915550000001",
    "keyword": "",
    "reply_to": "+491701234567@eu.rsms.net",
    "others": [],
    "routed_by": "reply",
    "original_text": "Pump P-101 pressure high",
    "original_subject": "Alarm",
}
CASES = [
    {},
    {"status": "delivered", "to_name": ""},
    {"text": "x" * 300 + " " + "long line " * 40},
    {"text": "ü" * 200},
    {"in_reply_to": "", "cost_centre": ""},
    {"reply_to": "+491701234501@eu.rsms.net", "references": "<a@b.example>  <orig@client.example>"},
    {"to_name": "Doe, John"},  # needs quoting: the EmailMessage path
    {"subject": "a very long subject " * 6},  # folded between its words, as EmailMessage does
]
# Written directly as encoded words, where EmailMessage encodes them its own way.
ENCODED_CASES = [
    {"text": "Grüße aus Köln – bis gleich 👋", "subject": "Grüße"},
    {"to_name": "Jürgen"},
    {"to_name": "Jürgen Müller-Lüdenscheidt von und zu Großherzogtum Überlingen"},
    {"to_name": "Иван Петров", "text": "Привет"},
]


def _normalise(data: bytes) -> bytes:
    boundary = re.search(rb'boundary="([^"]+)"', data)
    assert boundary is not None
    data = data.replace(boundary.group(1), b"BOUNDARY")
    data = re.sub(rb"(?m)^Date: .*$", b"Date: X", data)
    return re.sub(rb"(?m)^Message-ID: .*$", b"Message-ID: X", data)


@pytest.mark.parametrize("extra", CASES)
def test_direct_bytes_equal_email_message_bytes(extra: dict[str, Any]) -> None:
    renderer = Renderer(
        DEFAULT_TEMPLATES, from_address="bridge@example.com", from_name="SMS Bridge", hostname="h.t"
    )
    context = {**BASE, **extra}
    slow = renderer.render("status", "alice@example.com", context).as_bytes()
    fast = renderer.render_bytes("status", "alice@example.com", context)
    assert _normalise(fast) == _normalise(slow)


def _decoded(raw: str) -> str:
    """A header value as a reader shows it: unfolded (RFC 5322: a line break before
    white space removed), then RFC 2047 decoded (adjacent encoded words joined)."""
    return str(make_header(decode_header(re.sub(r"\r?\n(?=[ \t])", "", raw))))


def _read(data: bytes) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """What a reader sees: the decoded header fields (but Date, Message-ID and the MIME
    fields) and each body part's type and decoded text."""
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    skip = {"Date", "Message-ID", "MIME-Version", "Content-Type"}
    fields = {k: _decoded(v) for k, v in msg.items() if k not in skip}
    parts = [
        (p.get_content_type(), cast(bytes, p.get_payload(decode=True)).decode("utf-8"))
        for p in msg.walk()
        if not p.is_multipart()
    ]
    return fields, parts


def _lines_fit(data: bytes) -> bool:
    """Every header line fits in 78 columns; every encoded word is at most 75 characters
    and whole characters on its own (RFC 2047 §5: a reader may decode each alone)."""
    head = data.split(b"\n\n", 1)[0]
    words = re.findall(rb"=\?utf-8\?b\?([^?]*)\?=", head)
    for word in words:
        binascii.a2b_base64(word).decode("utf-8")  # UnicodeDecodeError: a split character
    return all(len(line) <= 78 for line in head.split(b"\n")) and all(
        len(w) + 12 <= 75 for w in words
    )


@pytest.mark.parametrize("extra", ENCODED_CASES)
def test_a_name_that_is_not_ascii_is_written_directly_and_reads_as_email_messages(
    extra: dict[str, Any],
) -> None:
    renderer = Renderer(
        DEFAULT_TEMPLATES, from_address="bridge@example.com", from_name="SMS Bridge", hostname="h.t"
    )
    context = {**BASE, **extra}
    h = renderer._head("alice@example.com", context, "Subject")
    assert mime._direct_fields(h, mime._fields(h)) is not None
    slow = renderer.render("status", "alice@example.com", context).as_bytes()
    fast = renderer.render_bytes("status", "alice@example.com", context)
    assert _read(fast) == _read(slow)
    if "to_name" in extra:
        assert _read(fast)[0]["To"] == f"{extra['to_name']} <alice@example.com>"
    assert _lines_fit(fast)


def _head(**fields: Any) -> mime.Head:
    values: dict[str, Any] = {
        "sender": ("SMS Bridge", "bridge@example.com"),
        "to": [("John Doe", "j@example.com")],
        "subject": "Hello",
        "domain": "h.t",
    } | fields
    return mime.head(**values)


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "Grüße"},
        {"subject": "x" * 80},
        {"to": [("Jürgen", "j@example.com")]},
        {"to": [(" ".join(["Name"] * 16), "j@example.com")]},  # a To line over 78
        {"reply_to": "o'brien@example.com"},
    ],
)
def test_headers_that_need_quoting_encoding_or_folding_are_not_plain(
    fields: dict[str, Any],
) -> None:
    """Not written as given (those that need encoding are written as encoded words of
    the direct path's own, the others by the mail library)."""
    h = _head(**fields)
    assert not mime._plain_head(h, mime._fields(h))


def test_a_subject_that_reads_like_an_encoded_word_is_plain_text() -> None:
    """`headers.text` breaks the `=?` that would start an encoded word, so the value needs
    no encoding and is written directly, as the mail library writes it."""
    h = _head(subject="=?utf-8?q?x?=")
    assert h.subject == "= ?utf-8?q?x?="
    assert mime._plain_head(h, mime._fields(h))


@pytest.mark.parametrize(
    ("fields", "text", "html"),
    [
        ({}, "short lines\n", "<p>x</p>"),
        ({"to": [("", "a@example.com"), ("Bob", "b@example.com")]}, "Grüße\n", "<p>ü</p>"),
        ({"reply_to": "+491701234567@eu.rsms.net"}, "", "x" * 200),
        ({"in_reply_to": "<a@b.example>"}, "ü" * 100, "line\r\nbreaks\rof every kind\n"),
        ({}, "--===============\nlooks like a boundary\n", "<p>" + "é " * 60 + "</p>"),
        ({"to": [("Doe, John", "j@example.com")]}, "quoted name\n", "<p>x</p>"),
        ({"sender": ("SMS from +491701234567", "bridge@example.com")}, "an SMS2Mail\n", "x"),
        ({"to": [("O'Brien (desk) a.b", "j@example.com")]}, "specials\n", "<p>x</p>"),
    ],
)
def test_direct_bytes_of_any_head_and_body_equal_email_message_bytes(
    fields: dict[str, Any], text: str, html: str
) -> None:
    h = _head(**fields)
    assert mime._plain_head(h, mime._fields(h))
    slow = mime.alternative_message(h, text, html).as_bytes()
    assert _normalise(mime.alternative(h, text, html)) == _normalise(slow)


@settings(max_examples=500, deadline=None)
@given(
    name=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    to_name=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
)
def test_any_ascii_display_name_written_directly_equals_email_message_bytes(
    name: str, to_name: str
) -> None:
    """Display names of any printable ASCII (quoted by `formataddr` where they have
    specials): whenever the head counts as plain, the direct bytes are EmailMessage's."""
    h = _head(sender=(name, "bridge@example.com"), to=[(to_name, "j@example.com")])
    if mime._plain_head(h, mime._fields(h)):
        slow = mime.alternative_message(h, "text\n", "<p>x</p>").as_bytes()
        assert _normalise(mime.alternative(h, "text\n", "<p>x</p>")) == _normalise(slow)


_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
_ANY_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=_SURROGATES), max_size=300)


@settings(max_examples=400, deadline=None)
@given(name=_ANY_TEXT, to_name=_ANY_TEXT, subject=_ANY_TEXT)
def test_any_name_and_subject_written_directly_read_as_email_messages(
    name: str, to_name: str, subject: str
) -> None:
    """Display names and subjects of any text (ASCII or not, long or short): written
    directly unless an address or an ASCII field needs the mail library; a reader
    decodes the head's values from them (an ASCII name as the mail library quotes it)
    and the same parts as from EmailMessage's bytes; every line fits in 78 columns,
    every encoded word in 75 and decodes alone. The mail library's own parser reads the
    same subject and name.

    (Not EmailMessage's header bytes as the reference: for "000¡ 𐀀 ¡" it ends an
    encoded word before the space and starts the next after it, and a reader loses the
    space.)"""
    h = _head(sender=(name, "bridge@example.com"), to=[(to_name, "j@example.com")], subject=subject)
    fields = mime._fields(h)
    direct = mime._direct_fields(h, fields)
    encoded = {k for k, v in fields if k in ("From", "To", "Subject") and not v.isascii()}
    # every name or subject that is not ASCII, unless an ASCII field needs the library
    # (too long for its line, or "=?" in it)
    if encoded and all(mime._plain_field(k, v) for k, v in fields if v.isascii()):
        assert direct is not None
    if direct is None:
        return
    fast = mime.alternative(h, "text ü\n", "<p>x</p>")
    slow = mime.alternative_message(h, "text ü\n", "<p>x</p>").as_bytes()
    read, parts = _read(fast)
    assert read == {
        "From": _shown(h.sender),
        "To": _shown(h.to[0]),
        "Subject": h.subject,
        "Auto-Submitted": "auto-replied",
    }
    assert parts == _read(slow)[1]
    if encoded:
        assert _lines_fit(fast)
    parsed = email.message_from_bytes(fast, policy=email.policy.default)
    assert parsed["Subject"] == h.subject
    # (it puts a space between adjacent encoded words of a display name, as in the
    # mail library's own "Groß herzogtum": the words, not the white space, are the same)
    assert "".join(parsed["To"].addresses[0].display_name.split()) == "".join(h.to[0].name.split())
    assert parsed["To"].addresses[0].addr_spec == "j@example.com"


_WORD = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(words=st.lists(st.one_of(_WORD, _WORD.map(lambda w: w * 3)), min_size=1, max_size=40))
def test_a_long_ascii_subject_is_folded_between_its_words(words: list[str]) -> None:
    """Written directly, folded before a word where the line would pass 78 characters
    (unless a word does not fit on a line or the subject has "=?"), and read back as it
    was."""
    h = _head(subject=" ".join(words))
    fields = mime._fields(h)
    direct = mime._direct_fields(h, fields)
    if "=?" not in h.subject and max(map(len, h.subject.split(" "))) <= 60:
        assert direct is not None
    if direct is None:
        return
    fast = mime.alternative(h, "text\n", "<p>x</p>")
    assert _read(fast)[0]["Subject"] == h.subject
    assert all(len(line) <= 78 for line in fast.split(b"\n\n", 1)[0].split(b"\n"))
    assert email.message_from_bytes(fast, policy=email.policy.default)["Subject"] == h.subject


def _shown(mailbox: Mailbox) -> str:
    """A mailbox as a reader shows it: `formataddr`'s for an ASCII name (quoted where it
    has specials), else the name and the address."""
    if mailbox.name.isascii():
        return mailbox.formatted()
    return f"{mailbox.name} <{mailbox.address}>"


# Lines short and long, ASCII and not, every kind of line break, boundary look-alikes.
_LINE = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=_SURROGATES), max_size=120),
    st.text("ab =.-\t", max_size=100),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=70, max_size=200),
    st.text('abcdefgh <>="ü€', min_size=60, max_size=200),
    st.sampled_from(["--===============", "From here", ".", "=?utf-8?q?x?=", "ü" * 40]),
)
_BODY = st.lists(_LINE, max_size=12).flatmap(
    lambda lines: st.sampled_from(["\n", "\r\n", "\r"]).map(lambda nl: nl.join(lines))
)


@settings(max_examples=300, deadline=None)
@given(text=_BODY, html=_BODY)
def test_direct_bytes_of_any_text_equal_email_message_bytes(text: str, html: str) -> None:
    h = _head()
    slow = mime.alternative_message(h, text, html).as_bytes()
    assert _normalise(mime.alternative(h, text, html)) == _normalise(slow)


def test_checked_head_values() -> None:
    h = _head(
        sender=("SMS <x@evil.example>", "bridge@example.com"),
        subject="a\r\nBcc: x@evil.example",
        reply_to="<x@evil.example>@eu.rsms.net",
        in_reply_to="<m1@client.example>\r\nBcc: x@evil.example",
    )
    assert h.sender.name == "SMS xevil.example"
    assert h.subject == "a Bcc: x@evil.example"
    assert h.reply_to == ""
    assert h.in_reply_to == h.references == "<m1@client.example>"
    with pytest.raises(HeaderError):
        _head(to=[("", "a@b.example>\r\nRCPT TO:<x@evil.example")])


def _unfolded(value: object) -> str:
    return " ".join(str(value).split())


@pytest.mark.parametrize("full", [False, True])
def test_a_delivery_report_writes_its_fields_and_the_original_without_encoded_words(
    full: bool,
) -> None:
    envid = "SAP" + "4711" * 30  # longer than a line
    long_header = "y " * 50
    original = f"Subject: alarm\r\nX-Long: {long_header}\r\n\r\n".encode()
    if full:
        original += b"Pump P-101\r\n"
    report = mime.delivery_report(
        _head(),
        "Your SMS could not be delivered.",
        [("Reporting-MTA", "dns; h.t"), ("Original-Envelope-Id", envid)],
        [("Final-Recipient", "rfc822; x@h.t"), ("Diagnostic-Code", "")],
        original,
        full=full,
    )
    data = report.as_bytes()
    assert b"=?" not in data  # a DSN field is not a text: never RFC 2047 encoded
    parsed = email.message_from_bytes(data, policy=email.policy.compat32)
    parts = cast("list[Message]", parsed.get_payload())  # multipart/report
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/delivery-status",
        "message/rfc822" if full else "text/rfc822-headers",
    ]
    per_message, per_recipient = cast("list[Message]", parts[1].get_payload())
    assert _unfolded(per_message["Original-Envelope-Id"]) == envid
    assert "Diagnostic-Code" not in per_recipient  # empty fields are left out
    if full:  # the original mail as it came
        returned = cast(Message, parts[2].get_payload(0))
        assert _unfolded(returned["X-Long"]) == long_header.strip()
        assert returned.get_payload() == "Pump P-101\n"
    else:
        assert f"X-Long: {long_header}" in cast(bytes, parts[2].get_payload(decode=True)).decode()


@settings(max_examples=500, deadline=None)
@given(
    name=st.sampled_from(["Reporting-MTA", "Final-Recipient", "Subject", "X", "Received"]),
    value=st.one_of(
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=90),
        st.lists(st.text("ab=?;<>()", min_size=1, max_size=9), max_size=12).map(" ".join),
        st.text(" \tab\x7fü", max_size=20),
    ),
)
def test_the_compat32_policy_folds_every_field_as_compat32_does(name: str, value: str) -> None:
    """The plain fields it writes as they are come out as compat32's folding writes
    them; every other field is compat32's."""
    for linesep in ("\n", "\r\n"):
        ours, theirs = mime.COMPAT32.clone(linesep=linesep), policy.compat32.clone(linesep=linesep)
        assert ours.fold(name, value) == theirs.fold(name, value)
        if value.isascii():
            assert ours.fold_binary(name, value) == theirs.fold_binary(name, value)


@pytest.mark.parametrize("full", [False, True])
def test_a_delivery_report_is_the_bytes_compat32_writes(full: bool) -> None:
    original = b"Subject: alarm\r\nX-Long: " + b"y " * 50 + b"\r\nX-Tabs: a\t b\r\n\r\nBody\r\n"
    report = mime.delivery_report(
        _head(subject="Undelivered: " + "alarm " * 20),
        "Your SMS could not be delivered.",
        [("Reporting-MTA", "dns; h.t"), ("Original-Envelope-Id", "SAP" + "4711" * 30)],
        [("Final-Recipient", "rfc822; x@h.t"), ("Action", "failed"), ("Status", "5.0.0")],
        original,
        full=full,
    )
    assert report.as_bytes() == report.as_bytes(policy=policy.compat32)


def _content_manager_body(text: str) -> tuple[str, bytes]:
    part = mime._part(text, "plain")
    return str(part["Content-Transfer-Encoding"]), str(part.get_payload()).encode("utf-8")


@pytest.mark.parametrize(
    ("text", "cte"),
    [
        ("", "7bit"),
        ("short\nlines\n", "7bit"),
        ("Grüße\n" * 3, "base64"),  # 7-bit, never 8bit: dense umlauts are shorter so
        ("Not delivered: Grüße aus Köln\nReason: the handset is off\n", "quoted-printable"),
        ("x" * 79, "quoted-printable"),
        ("long line " * 20 + "\n" + "more\n" * 15, "quoted-printable"),  # over ten lines
        ("ü" * 60, "base64"),
        (("€" * 30 + "\n") * 12 + "tail", "base64"),
        ("trailing space \nand tab\t\n" + "ab " * 40, "quoted-printable"),
    ],
)
def test_the_text_part_body_is_the_content_managers(text: str, cte: str) -> None:
    assert email.policy.compat32.max_line_length == mime._MAX_BODY_LINE
    assert mime._utf8_body(text) == _content_manager_body(text)
    assert mime._utf8_body(text)[0] == cte


@settings(max_examples=300, deadline=None)
@given(text=st.lists(_LINE, max_size=25).map("\n".join))
def test_the_text_part_body_of_any_text_is_the_content_managers(text: str) -> None:
    assert mime._utf8_body(text) == _content_manager_body(text)


def _quoted_printable(text: str) -> bytes:
    """The whole body through `quoprimime.body_encode` at once (what `_part` writes)."""
    body = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
    return quoprimime.body_encode(body.decode("latin-1"), mime._MAX_BODY_LINE).encode("ascii")


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_LINE, min_size=1, max_size=25))
def test_quoted_printable_from_kept_lines_is_the_whole_bodys_encoding(lines: list[str]) -> None:
    long_line = "=ü " * 400  # over _KEPT_LINE bytes: encoded, not kept
    for text in ("\n".join(lines), "\n".join([*lines, long_line, *lines])):
        encoded = b"\n".join(mime._qp_lines(text.encode().splitlines())) + b"\n"
        assert encoded == _quoted_printable(text)
        assert mime._utf8_body(text) == _content_manager_body(text)  # lines kept by now
        assert mime._utf8_body(text) == _content_manager_body(text)


@pytest.mark.parametrize("status", sorted(FINAL_ORDER_STATUSES))
@pytest.mark.parametrize("kind", ["status", "sms2mail"])
def test_every_status_and_kind_rendered_twice_equals_email_message_bytes(
    kind: str, status: str
) -> None:
    renderer = Renderer(
        DEFAULT_TEMPLATES, from_address="bridge@example.com", from_name="SMS Bridge", hostname="h.t"
    )
    context = {**BASE, **SMS2MAIL_CONTEXT, "status": status, "to_name": ""}
    for text in ("short", "a long SMS text " * 20, "Grüße " * 30):
        slow = renderer.render(kind, "alice@example.com", {**context, "text": text}).as_bytes()
        for _ in range(2):  # the second one from the kept lines
            fast = renderer.render_bytes(kind, "alice@example.com", {**context, "text": text})
            assert _normalise(fast) == _normalise(slow)
