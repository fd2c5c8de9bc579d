"""normalise_whitespace takes each line's trailing whitespace as `[^\\S\\n]+$` (MULTILINE) did."""

from __future__ import annotations

import random
import re
from pathlib import Path

from bridge.text.clean import _BLANK_RUNS, _SPACE_RUNS, normalise_whitespace
from bridge.text.mime import extract

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
_TRAILING_SPACE = re.compile(r"[^\S\n]+$", re.MULTILINE)


def _by_regex(text: str, *, collapse_spaces: bool = True) -> str:
    """The former form: the trailing whitespace of every line taken by one regex."""
    text = _TRAILING_SPACE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _BLANK_RUNS.sub("\n\n", text)
    if collapse_spaces and ("  " in text or "\t" in text):
        text = _SPACE_RUNS.sub(" ", text)
    return text.strip()


def test_normalised_text_is_the_regex_form() -> None:
    texts = []
    for eml in sorted(CORPUS.glob("*.eml")):
        try:
            mail = extract(eml.read_bytes())
        except ValueError:
            continue
        texts += [mail.body, mail.subject]
    spaces = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u2029\u202f\u3000\u200b"
    rng = random.Random(18)
    for size in (1, 3, 10, 60, 300):
        for _ in range(1500):
            texts.append("".join(rng.choices("ab" + spaces, k=size)))
    trimmed = 0
    for text in texts:
        for collapse in (True, False):
            want = _by_regex(text, collapse_spaces=collapse)
            assert normalise_whitespace(text, collapse_spaces=collapse) == want, repr(text)
        trimmed += _TRAILING_SPACE.search(text) is not None
    assert trimmed > 3_000
