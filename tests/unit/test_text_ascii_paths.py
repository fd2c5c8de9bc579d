"""The ASCII paths of the GSM-7 checks and encoder, and plan_sms's shortcuts, give what the
character-by-character forms give: every ASCII character and pair, random and corpus texts."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bridge.text.errors import TextRejected
from bridge.text.gsm7 import (
    ENCODE_MAP,
    GSM7_CHARS,
    Gsm7EncodeError,
    encode_gsm7,
    gsm7_units,
    is_gsm7,
    non_gsm7_chars,
)
from bridge.text.mime import extract
from bridge.text.replace import STRICT_GSM7, strict_non_gsm7
from bridge.text.sms import plan_sms, split_sms

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"


def _encoded(text: str) -> bytes | list[str]:
    """The septets one character at a time, or the characters GSM-7 lacks (first seen)."""
    bad = list(dict.fromkeys(ch for ch in text if ch not in GSM7_CHARS))
    return bad if bad else b"".join(ENCODE_MAP[ch] for ch in text)


def _texts() -> list[str]:
    ascii_chars = [chr(c) for c in range(128)]
    out = ["", *ascii_chars, *(a + b for a in ascii_chars for b in ascii_chars)]
    rng = random.Random(18)
    pool = ascii_chars + list("ÄöüßéçÇ€£¥Δ’“–…\u00a0я😀")
    for size in (5, 40, 160, 400):
        for _ in range(400):
            out.append("".join(rng.choices(ascii_chars, k=size)))  # mostly some non-GSM-7
            printable = [c for c in ascii_chars if " " <= c <= "~" and c != "`"] + ["\n", "\r"]
            out.append("".join(rng.choices(printable, k=size)))  # GSM-7, with extension ones
            out.append("".join(rng.choices(pool, k=size)))  # not ASCII
    for eml in sorted(CORPUS.glob("*.eml")):
        try:
            mail = extract(eml.read_bytes())
        except ValueError:
            continue
        out += [mail.subject, mail.body, mail.body.replace("`", "'")]
    return out


TEXTS = _texts()


def test_checks_and_encoder_give_the_per_character_results() -> None:
    one_path = 0
    for text in TEXTS:
        want = _encoded(text)
        assert is_gsm7(text) == (not isinstance(want, list)), text
        assert non_gsm7_chars(text) == (want if isinstance(want, list) else []), text
        assert strict_non_gsm7(text) == list(
            dict.fromkeys(ch for ch in text if ch not in STRICT_GSM7)
        ), text
        if isinstance(want, list):
            with pytest.raises(Gsm7EncodeError) as raised:
                encode_gsm7(text)
            assert raised.value.chars == want
            with pytest.raises(Gsm7EncodeError):
                gsm7_units(text)
        else:
            assert encode_gsm7(text) == want, text
            assert gsm7_units(text) == len(want)
            one_path += text.isascii() and len(want) == len(text)
    assert one_path > 1_000  # ASCII texts of one septet per character: the translate path


@pytest.mark.parametrize("max_parts", [1, 2, 3, 10])
def test_plan_parts_are_the_split_parts(max_parts: int) -> None:
    checked = 0
    for text in TEXTS[::5]:  # every fifth: the pairs would add nothing but time here
        for encoding in ("auto", "gsm7", "ucs2"):
            try:
                plan = plan_sms(text, encoding=encoding, max_parts=max_parts, overflow="truncate")
            except TextRejected:  # blank text: refused as before
                continue
            assert plan.parts == split_sms(plan.text, plan.encoding).parts
            checked += 1
    assert checked > 5_000
