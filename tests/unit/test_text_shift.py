"""National language shift tables (inbound decoding only); vectors checked with gsmcodecs."""

from __future__ import annotations

from bridge.text import decode_gsm7


def test_spanish_single_shift() -> None:
    assert decode_gsm7(b"Buenos d\x1bias", single_shift=2) == "Buenos días"
    assert decode_gsm7(b"\x1bA\x1b\x09", single_shift=2) == "Áç"


def test_turkish_locking_and_single_shift() -> None:
    data = b"I\x1d\x07k \x0b \x1d"
    assert decode_gsm7(data, locking_shift=1, single_shift=1) == "Işık Ğ ş"
    assert decode_gsm7(b"\x1bG\x1bs", single_shift=1) == "Ğş"
    assert decode_gsm7(b"\x04\x1be", locking_shift=1, single_shift=1) == "€€"


def test_portuguese_locking_and_single_shift() -> None:
    assert decode_gsm7(b"N{o a\t{o", locking_shift=3) == "Não ação"
    assert decode_gsm7(b"\x1b\x05\x1b\x7f", single_shift=3) == "êâ"


def test_unknown_language_falls_back_to_default() -> None:
    assert decode_gsm7(b"a\x1be", single_shift=9, locking_shift=2) == "a€"


def test_default_extension_still_reachable() -> None:
    assert decode_gsm7(b"\x1b(\x1b)", single_shift=2) == "{}"
