"""Keyword matching for inbound SMS: first word, case- and accent-insensitive; STOP/START.

Pure code. `normalise_word("Arrêt.")` is "arret". A STOP or START keyword counts only
when it is the whole message (surrounding spaces and punctuation ignored): "Stop." and
" stop " opt out, "please stop calling me" does not.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_EDGE = re.compile(r"^[\W_]+|[\W_]+$")

DEFAULT_STOP_KEYWORDS = (
    "STOP",
    "STOPP",
    "STOPALL",
    "ARRET",
    "ARRÊT",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
    "ABMELDEN",
    "ALTO",
    "BASTA",
)
DEFAULT_START_KEYWORDS = ("START", "UNSTOP", "YES", "STARTALL", "ANMELDEN", "RESUME")


def normalise_word(word: str) -> str:
    """Lower-case, without accents and without leading/trailing punctuation."""
    decomposed = unicodedata.normalize("NFKD", word.strip())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _EDGE.sub("", plain.casefold())


def first_word(text: str) -> str:
    """The message's first word, normalised ("" for an empty message)."""
    words = text.split()
    return normalise_word(words[0]) if words else ""


def whole_message_keyword(text: str, keywords: Iterable[str]) -> str | None:
    """The keyword when the whole message is exactly one of `keywords`, else None."""
    words = text.split()
    if len(words) != 1:
        return None
    word = normalise_word(words[0])
    wanted = {normalise_word(k) for k in keywords}
    return word if word and word in wanted else None


def matches(word: str, keyword: str, aliases: Iterable[str] = ()) -> bool:
    """Does the normalised first word `word` name this keyword or one of its aliases?"""
    return bool(word) and word in {normalise_word(k) for k in (keyword, *aliases)}
