"""Character replacement: map text outside GSM-7 to GSM-7 ("typographic", "smart", "simple").

Lossless GSM-7 here is *strict*: 'ç' is carried by 0x09 but handsets show 'Ç', so the
lossless policies ("ucs2", "reject") treat 'ç' as outside GSM-7, and the lossy policies
("smart", "simple") replace it by 'Ç' and say so. "typographic" replaces only typography
(quotes, dashes, ellipsis, bullets, special spaces, invisible characters) and never a
letter: the words stay exactly as written.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from bridge.text.gsm7 import GSM7_ASCII, GSM7_CHARS

#: GSM-7 characters a handset shows exactly as written (0x09 is shown as 'Ç', not 'ç')
STRICT_GSM7: frozenset[str] = GSM7_CHARS - {"ç"}

_SPACES = "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
_SPACES += "\u202f\u205f\u3000\t\v"

SMART_MAP: dict[str, str] = {
    **dict.fromkeys("‘’‚‛′‹›`´", "'"),
    **dict.fromkeys("“”„‟″«»", '"'),
    **dict.fromkeys("‐‑‒–—―−⁃", "-"),
    **dict.fromkeys(_SPACES, " "),
    # invisible characters: dropped (soft hyphen, zero-width space/non-joiner, BOM, word joiner)
    **dict.fromkeys("\u00ad\u200b\u200c\u2060\ufeff\u200e\u200f", ""),
    "\u2028": "\n",
    "\u2029": "\n",
    "\u0085": "\n",
    "…": "...",
    **dict.fromkeys("•‣◦∙●▪■►▸", "-"),  # bullets: "- item", as plain-text lists are written
    "·": ".",
    "⁄": "/",
    "ç": "Ç",
    "™": "TM",
    "©": "(C)",
    "®": "(R)",
    "ẞ": "SS",
    "œ": "oe",
    "Œ": "OE",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "ð": "d",
    "Ð": "D",
    "þ": "th",
    "Þ": "Th",
    "ı": "i",
}


@lru_cache(maxsize=4096)
def smart_char(ch: str) -> str | None:
    """The nearest GSM-7 text for one character, or None when it has no relative."""
    if ch in STRICT_GSM7:
        return ch
    if ch in SMART_MAP:
        return SMART_MAP[ch]
    decomposed = unicodedata.normalize("NFKD", ch)
    base = "".join(SMART_MAP.get(c, c) for c in decomposed if not unicodedata.combining(c))
    if base and base != ch and STRICT_GSM7.issuperset(base):
        return base
    return None


@lru_cache(maxsize=4096)
def typographic_char(ch: str) -> str | None:
    """The GSM-7 relative of a typographic character (punctuation, space, invisible, ™ © ®),
    or None for a letter, digit or symbol, which must stay exactly as written."""
    if ch in STRICT_GSM7:
        return ch
    category = unicodedata.category(ch)
    if category[0] in "PZC" or (category[0] == "S" and ch in SMART_MAP):
        return smart_char(ch)
    return None


def simple_char(ch: str) -> str:
    """One character under the "simple" policy: GSM-7 kept, 'ç' → 'Ç', anything else a space."""
    if ch in STRICT_GSM7:
        return ch
    return "Ç" if ch == "ç" else " "


def strict_non_gsm7(text: str) -> list[str]:
    """Distinct characters a handset would not show exactly under GSM-7, first-seen order."""
    if text.isascii():  # 'ç', the one difference to GSM-7, is not ASCII
        if not text.encode("ascii").translate(None, GSM7_ASCII):
            return []
    elif STRICT_GSM7.issuperset(text):
        return []
    return list(dict.fromkeys(ch for ch in text if ch not in STRICT_GSM7))


def apply(text: str, mapping: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Replace characters by `mapping`; return the new text and the distinct (before, after)."""
    if not mapping:
        return text, ()
    out = "".join([mapping.get(ch, ch) for ch in text]) if mapping else text
    return out, tuple(mapping.items())


def describe(chars: list[str], limit: int = 10) -> str:
    """Name characters for a human: 'ж' (U+0436, CYRILLIC SMALL LETTER ZHE), …"""
    named = []
    for ch in chars[:limit]:
        name = unicodedata.name(ch, "")
        shown = ch if ch.isprintable() and not ch.isspace() else ""
        label = f"U+{ord(ch):04X}" + (f" {name}" if name else "")
        named.append(f"'{shown}' ({label})" if shown else label)
    more = f" and {len(chars) - limit} more" if len(chars) > limit else ""
    return ", ".join(named) + more
