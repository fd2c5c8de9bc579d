"""MIME → text: headers, charsets, alternatives, attachments, limits."""

from __future__ import annotations

import time

import pytest

from bridge.text import MimeTooComplex, extract


def test_rfc2047_subject_and_flowed_body() -> None:
    raw = (
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus =?iso-8859-1?q?K=F6ln?=\r\n"
        b"From: =?utf-8?b?SsO8cmdlbg==?= <j@example.com>\r\n"
        b"Message-ID: <abc@example.com>\r\nReceived: a\r\nReceived: b\r\n"
        b"Auto-Submitted: auto-replied\r\nPrecedence: bulk\r\n"
        b"Content-Type: text/plain; charset=utf-8; format=flowed; delsp=no\r\n\r\n"
        b"Hallo dies ist \r\nein Test.\r\n"
    )
    mail = extract(raw)
    assert mail.subject == "Grüße aus Köln"
    assert mail.from_header == "Jürgen <j@example.com>"
    assert mail.message_id == "<abc@example.com>"
    assert mail.received_count == 2
    assert mail.auto_submitted == "auto-replied" and mail.precedence == "bulk"
    assert mail.body == "Hallo dies ist ein Test."
    assert mail.attachments == 0


def test_bad_charset_label_and_raw_8bit_subject() -> None:
    raw = (
        "Subject: Prüfung\r\nContent-Type: text/plain; charset=x-unknown\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nPrüfung läuft\r\n"
    ).encode()
    mail = extract(raw)
    assert mail.subject == "Prüfung" and mail.body == "Prüfung läuft"


def test_latin1_labelled_utf8_and_utf8_labelled_latin1() -> None:
    body = "Grüße"
    raw = b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\n" + body.encode("utf-8")
    assert extract(raw).body == body
    raw = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body.encode("latin-1")
    assert extract(raw).body == body


@pytest.mark.parametrize("label", ["iso-8859-1", "ISO_8859-1", "latin1", "l1"])
def test_latin1_labelled_windows_text_keeps_euro_quotes_and_dashes(label: str) -> None:
    # Windows and SAP code pages put € „ “ – in 0x80-0x9F under a Latin-1 label: read as
    # Latin-1 they were control characters, dropped from the SMS without a word.
    raw = (
        f"Subject: =?{label}?q?Kosten_500_=80?=\r\n"
        f"Content-Type: text/plain; charset={label}\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + b"Kosten 500 \x80, Status \x84kritisch\x93 \x96 pr\xfcfen"
    mail = extract(raw)
    assert mail.body == "Kosten 500 €, Status „kritisch“ – prüfen"
    assert mail.subject == "Kosten 500 €"
    # a byte cp1252 leaves undefined (0x81) costs only itself, not the rest's reading
    odd = b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\nA\x81 \x80 B\xe9"
    assert extract(odd).body == "A € Bé"  # (0x81 as Latin-1 is a control: dropped)


def test_alternative_prefers_plain_and_counts_attachments() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=M\r\n\r\n--M\r\n"
        b"Content-Type: multipart/alternative; boundary=A\r\n\r\n--A\r\n"
        b"Content-Type: text/plain\r\n\r\nplain text\r\n--A\r\n"
        b"Content-Type: text/html\r\n\r\n<p>html text</p>\r\n--A--\r\n--M\r\n"
        b"Content-Type: application/ms-tnef; name=winmail.dat\r\n"
        b"Content-Disposition: attachment; filename=winmail.dat\r\n\r\nxx\r\n--M\r\n"
        b"Content-Type: text/plain; name=notes.txt\r\n"
        b"Content-Disposition: attachment; filename=notes.txt\r\n\r\nnotes\r\n--M--\r\n"
    )
    mail = extract(raw)
    assert mail.body == "plain text"
    assert mail.attachments == 2


def test_html_only_falls_back_to_text() -> None:
    raw = (
        b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
        b"\r\n<html><head><style>p {color: red}</style><script>x()</script></head><body>"
        b'<p>Bitte <a href=3D"https://ex.example/t">hier</a> klicken.</p></body></html>\r\n'
    )
    assert extract(raw).body == "Bitte hier (https://ex.example/t) klicken."


def _nested(levels: int) -> bytes:
    head = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
        for i in range(levels)
    )
    tail = b"".join(b"--b%d--\r\n" % i for i in reversed(range(levels)))
    return (
        b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n"
        + head
        + b"--b%d--\r\n" % levels
        + tail
    )


def test_deep_nesting_rejected_quickly() -> None:
    start = time.perf_counter()
    with pytest.raises(MimeTooComplex):
        extract(_nested(5000))
    assert time.perf_counter() - start < 1.0
    with pytest.raises(MimeTooComplex):
        extract(_nested(30), max_depth=20)
    extract(_nested(10))


def test_one_megabyte_body() -> None:
    raw = b"Subject: big\r\n\r\n" + (b"lorem ipsum dolor sit amet " * 40 + b"\r\n") * 960
    start = time.perf_counter()
    mail = extract(raw)
    assert time.perf_counter() - start < 2.0
    assert mail.body.startswith("lorem ipsum") and len(mail.body) == 200_000
    assert mail.body_truncated


def test_message_rfc822_bomb_rejected_before_parsing() -> None:
    raw = b"".join(b"Content-Type: message/rfc822\r\n\r\n" for _ in range(5000)) + b"\r\nhi\r\n"
    start = time.perf_counter()
    with pytest.raises(MimeTooComplex):
        extract(raw)
    assert time.perf_counter() - start < 0.5


def test_too_many_parts() -> None:
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(150))
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n"
    with pytest.raises(MimeTooComplex):
        extract(raw)


def test_forwarded_mail_attachment_counted_not_used() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=M\r\n\r\n--M\r\n"
        b"Content-Type: text/plain\r\n\r\nsee attached\r\n--M\r\n"
        b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--M--\r\n"
    )
    mail = extract(raw)
    assert mail.body == "see attached" and mail.attachments == 1


def test_missing_headers_and_empty_mail() -> None:
    mail = extract(b"\r\n")
    assert mail.subject == "" and mail.body == "" and mail.message_id is None
    assert mail.from_header == "" and mail.received_count == 0


def test_broken_encoded_word_charset_survives() -> None:
    mail = extract(b"Subject: =?x-bogus?q?Hallo_Welt?= =?utf-8?q?=E2=82=AC?=\r\n\r\nb\r\n")
    assert mail.subject.endswith("€") and "Hallo" in mail.subject
