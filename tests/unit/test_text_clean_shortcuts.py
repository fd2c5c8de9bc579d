"""The clean-up's shortcuts (a pattern is not run on a text it cannot match) change nothing."""

from __future__ import annotations

import random
import re
from pathlib import Path

from bridge.text.clean import (
    _BLANK_RUNS,
    _SPACE_RUNS,
    QUOTED_LINE,
    CleanRules,
    clean,
    normalise_whitespace,
)
from bridge.text.mime import extract

_TRAILING_SPACE = re.compile(r"[^\S\n]+$", re.MULTILINE)  # the one-regex form of the trim
CORPUS = sorted((Path(__file__).resolve().parents[1] / "data" / "corpus").glob("*.eml"))


def _whitespace_always(text: str, *, collapse_spaces: bool = True) -> str:
    """normalise_whitespace with every pattern run."""
    text = _TRAILING_SPACE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _BLANK_RUNS.sub("\n\n", text)
    if collapse_spaces:
        text = _SPACE_RUNS.sub(" ", text)
    return text.strip()


def _texts() -> list[str]:
    rng = random.Random(7)
    pieces = ["a", "word", " ", "  ", "\t", " \t ", "\n", "\n\n\n", "\r\n", ">", "> quoted\n"]
    pieces += ["\u00a0", "\u2003", "x>y", "-- \n", "Sent from my iPhone", "\x0b", "\x0c"]
    out = [extract(path.read_bytes()).body for path in CORPUS]
    out += ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 60))) for _ in range(4000)]
    return out


def test_whitespace_is_normalised_as_with_every_pattern_run() -> None:
    for text in _texts():
        for collapse in (True, False):
            got = normalise_whitespace(text, collapse_spaces=collapse)
            assert got == _whitespace_always(text, collapse_spaces=collapse), repr(text)


def test_the_skipped_patterns_find_nothing_where_they_are_skipped() -> None:
    for text in _texts():
        if ">" not in text:
            assert QUOTED_LINE.search(text) is None
        if "  " not in text and "\t" not in text:
            assert _SPACE_RUNS.search(text) is None


def test_clean_keeps_what_it_kept() -> None:
    body = "Tor 4 ist zu.  Bitte   pruefen.\n\n\n-- \nKarl\n"
    assert clean(body, CleanRules()).text == "Tor 4 ist zu. Bitte pruefen."
    quoted = "Ja.\n\n> Ist Tor 4 zu?\n> Danke\n"
    assert clean(quoted, CleanRules()).text == "Ja."
