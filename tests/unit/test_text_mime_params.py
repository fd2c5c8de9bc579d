"""MIME → text with hostile parameters: an odd charset name never crashes the parser."""

from __future__ import annotations

import pytest

from bridge.text.errors import MimeTooComplex
from bridge.text.mime import extract


@pytest.mark.parametrize("charset", ["üñí", "utf-8\udcff", "x-unknown", "", "utf-16"])
def test_an_odd_charset_on_an_8bit_part_gives_text_not_an_error(charset: str) -> None:
    raw = (
        b"Subject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain; charset=" + charset.encode("utf-8", "surrogateescape")
        + b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe \xff\r\n--b--\r\n"
    )  # fmt: skip
    mail = extract(raw)
    assert mail.body.startswith("Gr")


@pytest.mark.parametrize("charset", ["idna", "base64", "rot13", "unicode_escape"])
def test_a_codec_that_is_no_character_set_on_8bit_text_is_the_mails_fault(charset: str) -> None:
    raw = (
        b"Subject: s\r\nContent-Type: text/plain; charset=" + charset.encode()
        + b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9 \xff\xfe\r\n"
    )  # fmt: skip
    with pytest.raises(MimeTooComplex, match=f"charset={charset}, which is no character set"):
        extract(raw)


def test_such_a_label_on_ascii_text_or_in_a_header_is_survived() -> None:
    raw = (
        b"Subject: =?idna?q?caf=C3=A9?=\r\nContent-Type: text/plain; charset=idna\r\n\r\nhello\r\n"
    )
    mail = extract(raw)
    assert (mail.subject, mail.body.strip()) == ("café", "hello")
