"""encode_gsm7 gives the septets of ENCODE_MAP, character by character, for any text."""

from __future__ import annotations

import random

import pytest

from bridge.text.gsm7 import ENCODE_MAP, GSM7_CHARS, Gsm7EncodeError, encode_gsm7


def _by_map(text: str) -> bytes | list[str]:
    """The septets looked up one character at a time, or the characters GSM-7 lacks."""
    try:
        return b"".join([ENCODE_MAP[ch] for ch in text])
    except KeyError:
        return list(dict.fromkeys(ch for ch in text if ch not in ENCODE_MAP))


def _encoded(text: str) -> bytes | list[str]:
    try:
        return encode_gsm7(text)
    except Gsm7EncodeError as exc:
        return exc.chars


def test_every_character_alone() -> None:
    for code in [*range(0x3000), *range(0xD7F0, 0xE010), *range(0xFF00, 0x10000), 0x1F600]:
        ch = chr(code)
        assert _encoded(ch) == _by_map(ch), hex(code)
        assert _encoded("a" + ch + "€") == _by_map("a" + ch + "€"), hex(code)


def test_random_texts_of_gsm7_and_other_characters() -> None:
    rng = random.Random(338)
    alphabet = sorted(GSM7_CHARS)
    others = ["é", "ç", "€", "[", "\\", "~", "`", "ä", "Ω", "ł", "\u2019", "😀", "\udc80", "\x00"]
    for _ in range(3000):
        pool = alphabet if rng.random() < 0.7 else alphabet + others
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 400)))
        assert _encoded(text) == _by_map(text)


def test_the_error_names_the_characters_in_order() -> None:
    with pytest.raises(Gsm7EncodeError) as raised:
        encode_gsm7("ok ł then 😀 and ł again")
    assert raised.value.chars == ["ł", "😀"]
