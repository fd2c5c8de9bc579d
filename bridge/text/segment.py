"""UCS-2 part boundaries: cut UTF-16 text into parts without splitting surrogates or graphemes.

A part never ends inside a surrogate pair. Where possible it also does not cut a grapheme
cluster (a letter and its combining marks, an emoji with its skin tone / variation selector,
a ZWJ sequence, a flag of two regional indicators): the cut moves back to the cluster start
unless the cluster alone is longer than a part.
"""

from __future__ import annotations

import re
import unicodedata

_ZWJ = "\u200d"
_MAX_BACKOFF = 16  # characters; a longer "cluster" is cut hard
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _is_ri(ch: str) -> bool:
    return "\U0001f1e6" <= ch <= "\U0001f1ff"


def _extends(ch: str) -> bool:
    """True when `ch` belongs to the cluster of the character before it."""
    if ch == _ZWJ or "\ufe00" <= ch <= "\ufe0f" or "\U000e0100" <= ch <= "\U000e01ef":
        return True
    if "\U0001f3fb" <= ch <= "\U0001f3ff" or "\U000e0020" <= ch <= "\U000e007f":
        return True
    return unicodedata.category(ch) in ("Mn", "Me", "Mc")


def is_boundary(text: str, i: int) -> bool:
    """May a part end between text[i-1] and text[i]? (0 < i < len(text))"""
    prev, cur = text[i - 1], text[i]
    if prev == _ZWJ or _extends(cur):
        return False
    if _is_ri(prev) and _is_ri(cur):
        run = 0
        j = i - 1
        while j >= 0 and _is_ri(text[j]):
            run += 1
            j -= 1
        return run % 2 == 0  # an odd run before i means text[i] completes a flag
    return True


def _units(ch: str) -> int:
    return 2 if ch > "\uffff" else 1


def split_ucs2_text(text: str, per: int) -> list[str]:
    """Cut `text` into pieces of at most `per` UTF-16 units each."""
    bmp_only = _ASTRAL.search(text) is None
    pieces: list[str] = []
    start, n = 0, len(text)
    while start < n:
        if bmp_only:
            end = min(start + per, n)
        else:
            end, used = start, 0
            while end < n and used + _units(text[end]) <= per:
                used += _units(text[end])
                end += 1
        if end < n and not is_boundary(text, end):
            back = end - 1
            while back > start and end - back < _MAX_BACKOFF and not is_boundary(text, back):
                back -= 1
            if back > start and is_boundary(text, back):
                end = back
        pieces.append(text[start:end])
        start = end
    return pieces
