"""MIME → text with hostile parameters: an odd charset name never crashes the parser."""

from __future__ import annotations

import pytest

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
