"""SMS planning: choose the encoding, apply the replacement policy, split into parts, cap parts.

Policies (`plan_sms`):
  * replacement "typographic" (default): typography outside GSM-7 becomes its GSM-7 relative
    (“ ” „ ’ → " ', – — → -, … → ..., • → -, NBSP and other spaces → space, soft hyphens and
    zero-width characters dropped); if a letter or symbol outside GSM-7 remains (á, Ж, 😀,
    °) the *original* text goes as UCS-2, so no word is ever changed.
  * "ucs2": lossless; text that GSM-7 cannot show exactly goes as UCS-2.
  * "smart": characters outside GSM-7 become their nearest GSM-7 relatives (’ → ', – → -,
    … → ..., NBSP → space, á → a, ç → Ç; GSM-7's own é ü ñ Ä … are kept). If characters with
    no relative remain (emoji, CJK, Cyrillic) the *original* text goes as UCS-2 (nothing is
    replaced then, since UCS-2 carries it all); with encoding="gsm7" forced they become '?'.
  * "simple": characters outside GSM-7 become a space ('ç' → 'Ç'); always GSM-7.
  * "reject": text outside GSM-7 raises TextRejected("bad_encoding") naming the characters.
encoding="ucs2" forces UCS-2 (no replacement); encoding="gsm7" forces GSM-7, and then the
"ucs2" and "typographic" replacement policies behave as "smart".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bridge.text import replace
from bridge.text.errors import TextRejected
from bridge.text.gsm7 import ESC, encode_gsm7
from bridge.text.segment import split_ucs2_text
from bridge.values import Encoding

EncodingChoice = Literal["auto", "gsm7", "ucs2"]
Replacement = Literal["typographic", "ucs2", "smart", "simple", "reject"]
Overflow = Literal["truncate", "reject"]

SINGLE_LIMIT: dict[Encoding, int] = {"gsm7": 160, "ucs2": 70}
_PART_LIMIT: dict[tuple[Encoding, bool], int] = {
    ("gsm7", False): 153,
    ("gsm7", True): 152,
    ("ucs2", False): 67,
    ("ucs2", True): 66,
}
MAX_PARTS_LIMIT = 255  # the concatenation IE counts parts in one octet
CR = 0x0D
# On the air interface a part's septets are packed after its UDH (TS 23.040): 6 octets
# with an 8-bit reference, 7 with a 16-bit one, and fill bits up to a septet boundary.
_AIR_FILL: dict[bool, int] = {False: 1, True: 0}  # ref16 -> fill bits
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def part_limit(encoding: Encoding, *, ref16: bool = False) -> int:
    """Septets (gsm7) or UTF-16 units (ucs2) per part of a concatenated message."""
    return _PART_LIMIT[(encoding, ref16)]


@dataclass(frozen=True)
class SmsSegments:
    """The encoded parts of one text; the SMPP transport adds the UDH per part."""

    encoding: Encoding
    data_coding: int
    payloads: tuple[bytes, ...]
    units: int  # total septets (gsm7) or UTF-16 units (ucs2)

    @property
    def parts(self) -> int:
        return len(self.payloads)


@dataclass(frozen=True)
class SmsPlan:
    """What will be sent: the text after replacement and how it is encoded and split."""

    text: str
    encoding: Encoding
    units: int
    parts: int
    replaced: tuple[tuple[str, str], ...]
    truncated: bool


def split_sms(text: str, encoding: Encoding, *, ref16: bool = False) -> SmsSegments:
    """Encode and split `text`: one SMS up to 160 septets / 70 units, else 153/67 per part.

    An ESC pair and a UTF-16 surrogate pair are never split; UCS-2 parts also avoid cutting
    a grapheme cluster (combining marks, ZWJ emoji sequences, flags) where that is possible.
    Raises `Gsm7EncodeError` (a ValueError) when gsm7 is asked for non-GSM-7 text.
    """
    if encoding == "gsm7":
        data = encode_gsm7(text)
        units = len(data)
        if units <= SINGLE_LIMIT["gsm7"]:
            return SmsSegments("gsm7", 0x00, (data,), units)
        per = part_limit("gsm7", ref16=ref16)
        chunks = chunk_septets(data, per, _AIR_FILL[ref16])
        return SmsSegments("gsm7", 0x00, tuple(chunks), units)
    data = text.encode("utf-16-be")
    units = len(data) // 2
    if units <= SINGLE_LIMIT["ucs2"]:
        return SmsSegments("ucs2", 0x08, (data,), units)
    pieces = split_ucs2_text(text, part_limit("ucs2", ref16=ref16))
    return SmsSegments("ucs2", 0x08, tuple(p.encode("utf-16-be") for p in pieces), units)


def chunk_septets(data: bytes, per: int, fill_bits: int) -> list[bytes]:
    """`data` (septets) in parts of at most `per`, each packed after `fill_bits` on the
    air. An ESC stays with its extension character (an extension code is never 0x1B, so
    an ESC at a part's end opens a pair). A part before the last that would end in CR
    exactly on an octet boundary leaves that CR to the next part: a receiver takes such
    a CR for padding (TS 23.038 6.1.2.3.1), and a full part has no room for the second
    CR that would keep it."""
    out: list[bytes] = []
    start = 0
    while start < len(data):
        end = min(start + per, len(data))
        if end < len(data) and data[end - 1] == ESC:
            end -= 1
        if (
            end < len(data)
            and end - start > 1
            and data[end - 1] == CR
            and (fill_bits + 7 * (end - start)) % 8 == 0
        ):
            end -= 1
            if data[end - 1] == ESC and end - start > 1:
                end -= 1
        out.append(data[start:end])
        start = end
    return out


def count_parts(units: int, encoding: Encoding, *, ref16: bool = False) -> int:
    """Parts needed for `units` when no pair straddles a boundary (a lower bound otherwise)."""
    if units <= SINGLE_LIMIT[encoding]:
        return 1
    per = part_limit(encoding, ref16=ref16)
    return -(-units // per)


def _choose(
    text: str, encoding: EncodingChoice, replacement: Replacement
) -> tuple[str, Encoding, tuple[tuple[str, str], ...]]:
    if encoding == "ucs2":
        return text, "ucs2", ()
    bad = replace.strict_non_gsm7(text)
    if not bad:
        return text, "gsm7", ()
    lossless = ("ucs2", "typographic")
    policy = "smart" if replacement in lossless and encoding == "gsm7" else replacement
    if policy == "ucs2":
        return text, "ucs2", ()
    if policy == "reject":
        raise TextRejected(
            "bad_encoding",
            "the text contains characters outside the GSM 03.38 SMS alphabet: "
            + replace.describe(bad)
            + "; replace them or ask for Unicode SMS to be allowed",
        )
    mapping: dict[str, str] = {}
    if policy == "simple":
        mapping = {ch: replace.simple_char(ch) for ch in bad}
    elif policy == "typographic":
        for ch in bad:
            rel = replace.typographic_char(ch)
            if rel is None:  # a real letter or symbol: UCS-2 carries the text as written
                return text, "ucs2", ()
            mapping[ch] = rel
    else:
        for ch in bad:
            rel = replace.smart_char(ch)
            if rel is None:
                if encoding == "auto":
                    return text, "ucs2", ()
                rel = "?"
            mapping[ch] = rel
    new_text, pairs = replace.apply(text, mapping)
    return new_text, "gsm7", pairs


def _cut(text: str, length: int, at_word: bool) -> str:
    cut = text[:length]
    if at_word and length < len(text) and not text[length].isspace():
        space = max(cut.rfind(" "), cut.rfind("\n"))
        if space >= max(1, length - 25):
            cut = cut[:space]
    return cut.rstrip()


def _truncate(
    text: str, encoding: Encoding, max_parts: int, marker: str, at_word: bool, ref16: bool
) -> str:
    """The longest prefix (plus marker) that fits `max_parts` parts."""

    def fits(candidate: str) -> bool:
        return split_sms(candidate, encoding, ref16=ref16).parts <= max_parts

    lo, hi = 0, min(len(text), max_parts * SINGLE_LIMIT[encoding])  # every char costs >= 1
    while lo < hi:  # largest n with fits(text[:n] + marker)
        mid = (lo + hi + 1) // 2
        if fits(text[:mid].rstrip() + marker):
            lo = mid
        else:
            hi = mid - 1
    return _cut(text, lo, at_word) + marker


def plan_sms(
    text: str,
    *,
    encoding: EncodingChoice = "auto",
    replacement: Replacement = "typographic",
    max_parts: int = 10,
    overflow: Overflow = "reject",
    truncate_marker: str = "...",
    truncate_at_word: bool = True,
    ref16: bool = False,
) -> SmsPlan:
    """Decide encoding, replacements and parts for `text` under the given policy.

    Raises TextRejected: "no_text" (empty or blank), "bad_encoding" (replacement="reject"),
    "too_long" (overflow="reject" and more than `max_parts` parts).
    """
    if not 1 <= max_parts <= MAX_PARTS_LIMIT:
        raise ValueError(f"max_parts must be 1..{MAX_PARTS_LIMIT}, not {max_parts}")
    if not text.isascii():  # ASCII holds no surrogate
        text = _LONE_SURROGATE.sub("\ufffd", text)
    if not text.strip():
        raise TextRejected("no_text", "the mail has no text to send: write it in the body")
    text, enc, replaced = _choose(text, encoding, replacement)
    if not text.strip():
        raise TextRejected("no_text", "no text is left after replacing unsupported characters")
    units = len(encode_gsm7(text)) if enc == "gsm7" else len(text.encode("utf-16-be")) // 2
    estimate = count_parts(units, enc, ref16=ref16)
    # one part (the split gives one then), or certainly too long: skip the exact split
    exact = 1 < estimate <= max_parts + 1
    parts = split_sms(text, enc, ref16=ref16).parts if exact else estimate
    if parts <= max_parts:
        return SmsPlan(text, enc, units, parts, replaced, truncated=False)
    if overflow == "reject":
        per = part_limit(enc, ref16=ref16)
        unit_word = "GSM characters" if enc == "gsm7" else "UCS-2 characters"
        raise TextRejected(
            "too_long",
            f"the text needs {parts} SMS parts, at most {max_parts} are allowed; "
            f"shorten it to about {max_parts * per} {unit_word} (it has {units})",
        )
    marker = truncate_marker if enc == "ucs2" else _gsm7_marker(truncate_marker)
    cut = _truncate(text, enc, max_parts, marker, truncate_at_word, ref16)
    seg = split_sms(cut, enc, ref16=ref16)
    return SmsPlan(cut, enc, seg.units, seg.parts, replaced, truncated=True)


def _gsm7_marker(marker: str) -> str:
    """The marker as GSM-7 text (a non-GSM-7 marker must not force the encoding)."""
    out = "".join(replace.smart_char(ch) or "" for ch in marker)
    return out if out or not marker else "..."
