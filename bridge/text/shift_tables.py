"""National language shift tables (TS 23.038 Annex A) for decoding inbound GSM-7."""

from __future__ import annotations

from bridge.text.gsm7 import BASIC_TABLE, EXTENSION_TABLE


def locking_table(lang: int) -> str:
    """The 128-character locking-shift table of a language id (0 = the default table)."""
    if lang == 0:
        return BASIC_TABLE
    raise ValueError(f"unsupported GSM-7 locking shift language {lang}")


def single_table(lang: int) -> dict[int, str]:
    """The single-shift (extension) table of a language id (0 = the default extension)."""
    if lang == 0:
        return EXTENSION_TABLE
    raise ValueError(f"unsupported GSM-7 single shift language {lang}")
