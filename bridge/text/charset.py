"""Charset decoding that survives wrong or missing labels, for bodies and RFC 2047 headers."""

from __future__ import annotations

import codecs
import re
from email.errors import HeaderParseError
from email.header import decode_header

from bridge.text.controls import one_line

# labels mail clients use that Python's codec registry does not know (or knows worse)
_ALIASES = {
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "windows-874": "cp874",
    "x-sjis": "shift_jis",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
}
# Labels read as Windows-1252, as browsers do (WHATWG Encoding): text labelled Latin-1
# from Windows and SAP code pages carries € „ “ – … in 0x80-0x9F, where Latin-1 has only
# control characters (which the text engine would then drop). The five bytes cp1252
# leaves undefined still decode, as Latin-1 (the last step of decode_bytes).
_AS_CP1252 = frozenset({"iso8859_1", "latin_1"})
# single-byte labels that senders (SAP, old gateways) put on UTF-8 text
_WESTERN = {"iso8859_1", "latin_1", "iso8859_15", "cp1252", "ascii", "iso8859_2", "cp1250"}
# codecs Python knows that are not character sets of text (a mail labelled with one has
# text in no known charset: `charset=idna` on 8-bit text is the mail's fault, not ours)
_NOT_CHARSETS = frozenset(
    {"idna", "punycode", "raw_unicode_escape", "unicode_escape", "undefined", "base64", "hex"}
    | {"zlib", "bz2", "rot_13", "uu", "quopri"}
)
_FOLD = re.compile(r"\r?\n[ \t]*")
_SURROGATES = re.compile("[\udc80-\udcff]")


def codec_name(label: str | None) -> str | None:
    """Python's codec name for a MIME charset label, or None when unknown."""
    if not label:
        return None
    label = label.strip().strip('"').lower()
    label = _ALIASES.get(label, label)
    try:
        name = codecs.lookup(label).name.replace("-", "_")
    except LookupError:
        return None
    return None if name in _NOT_CHARSETS else name


def not_a_charset(label: str | None) -> bool:
    """True for a label that names a codec which is no character set (`idna`, `base64`)."""
    if not label:
        return False
    try:
        info = codecs.lookup(_ALIASES.get(label.strip().strip('"').lower(), label.strip()))
    except LookupError:
        return False
    return info.name.replace("-", "_") in _NOT_CHARSETS


def decode_bytes(data: bytes, label: str | None) -> str:
    """Decode text bytes: the label, then UTF-8, then cp1252 (never fails: a byte cp1252
    leaves undefined is read as Latin-1). A Latin-1 label is read as cp1252, which has
    the same printable characters and more.

    Text labelled with a Western single-byte charset (or US-ASCII) that is valid UTF-8 and
    not plain ASCII is decoded as UTF-8: a wrong label is far likelier than Latin-1 bytes
    that happen to form UTF-8 sequences.
    """
    if data.isascii():
        return data.decode("ascii")
    name = codec_name(label)
    if name in _AS_CP1252:
        name = "cp1252"
    order: list[str] = []
    if name and name not in _WESTERN:
        order.append(name)
    order.append("utf-8")
    if name in _WESTERN and name != "ascii":
        order.append(name)
    order.append("cp1252")
    for codec in order:
        if codec == "cp1252":
            return _cp1252(data)  # never fails
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    return _cp1252(data)  # pragma: no cover - the loop ends with cp1252


def _cp1252(data: bytes) -> str:
    """cp1252, each of the five bytes it leaves undefined read as Latin-1 (as browsers do)."""
    text = data.decode("cp1252", "surrogateescape")
    return _SURROGATES.sub(lambda m: chr(ord(m.group()) - 0xDC00), text)


def undo_surrogateescape(value: str) -> str:
    """Raw 8-bit header bytes (kept as surrogate escapes by the parser) decoded as text."""
    if _SURROGATES.search(value) is None:
        return value
    return decode_bytes(value.encode("utf-8", "surrogateescape"), None)


def decode_header_value(value: str | None) -> str:
    """Unfold and decode an RFC 2047 header value; bad charsets and raw 8-bit survive;
    control characters are dropped (a tab becomes a space: `bridge/text/controls.py`)."""
    if not value:
        return ""
    value = str(value)
    if value.isascii() and "\n" not in value and "=?" not in value:
        return one_line(value).strip()  # nothing to unfold, undo or decode (most values)
    value = undo_surrogateescape(_FOLD.sub(" ", value))
    if "=?" not in value:
        return one_line(value).strip()
    try:
        chunks = decode_header(value)
    except (HeaderParseError, ValueError, UnicodeError):
        return one_line(value).strip()
    out: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:
            out.append(chunk.decode("raw-unicode-escape", "replace"))
        else:
            out.append(decode_bytes(chunk, charset))
    return one_line("".join(out)).strip()
