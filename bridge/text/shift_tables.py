"""The GSM 03.38 character tables: default alphabet, extension table, national shift tables.

The default alphabet and its extension table (TS 23.038 §6.2.1) serve sending and
receiving; the national language shift tables (Annex A) serve decoding inbound GSM-7
only. The codec that reads them is `bridge.text.gsm7`.

Language ids: 1 Turkish (locking + single shift), 2 Spanish (single shift only),
3 Portuguese (locking + single shift). An MO message announces them with UDH IE 0x25
(locking shift) and 0x24 (single shift). Ids this module does not know (the Indic tables
4-13, or a locking shift for Spanish) fall back to the default tables, so an inbound
message still decodes. The bridge never *sends* with shift tables.

Tables transcribed from TS 23.038 Rel-18 Annex A and cross-checked against the MIT
licensed `gsmcodecs` 1.0.0 charmaps (tests/unit/test_text_shift.py holds the vectors).
"""

from __future__ import annotations

# TS 23.038 §6.2.1, index = septet value; 0x1B is the escape to the extension table.
BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
assert len(BASIC_TABLE) == 128

# TS 23.038 §6.2.1.1: septet after ESC -> character (each costs 2 septets).
EXTENSION_TABLE: dict[int, str] = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

_LOCKING_TURKISH = (
    "@£$¥€éùıòÇ\nĞğ\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bŞşßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "İABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "çabcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
_LOCKING_PORTUGUESE = (
    "@£$¥êéúíóç\nÔô\rÁá"
    "Δ_ªÇÀ∞^\\€Ó|\x1bÂâÊÉ"
    " !\"#º%&'()*+,-./"
    "0123456789:;<=>?"
    "ÍABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÃÕÚÜ§"
    "~abcdefghijklmno"
    "pqrstuvwxyzãõ`üà"
)
_SINGLE_TURKISH: dict[int, str] = {
    0x0A: "\x0c",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x47: "Ğ",
    0x49: "İ",
    0x53: "Ş",
    0x63: "ç",
    0x65: "€",
    0x67: "ğ",
    0x69: "ı",
    0x73: "ş",
}
_SINGLE_SPANISH: dict[int, str] = {
    0x09: "ç",
    0x0A: "\x0c",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x41: "Á",
    0x49: "Í",
    0x4F: "Ó",
    0x55: "Ú",
    0x61: "á",
    0x65: "€",
    0x69: "í",
    0x6F: "ó",
    0x75: "ú",
}
_SINGLE_PORTUGUESE: dict[int, str] = {
    0x05: "ê",
    0x09: "ç",
    0x0A: "\x0c",
    0x0B: "Ô",
    0x0C: "ô",
    0x0E: "Á",
    0x0F: "á",
    0x12: "Φ",
    0x13: "Γ",
    0x14: "^",
    0x15: "Ω",
    0x16: "Π",
    0x17: "Ψ",
    0x18: "Σ",
    0x19: "Θ",
    0x1F: "Ê",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x41: "À",
    0x49: "Í",
    0x4F: "Ó",
    0x55: "Ú",
    0x5B: "Ã",
    0x5C: "Õ",
    0x61: "Â",
    0x65: "€",
    0x69: "í",
    0x6F: "ó",
    0x75: "ú",
    0x7B: "ã",
    0x7C: "õ",
    0x7F: "â",
}

_LOCKING: dict[int, str] = {1: _LOCKING_TURKISH, 3: _LOCKING_PORTUGUESE}
_SINGLE: dict[int, dict[int, str]] = {1: _SINGLE_TURKISH, 2: _SINGLE_SPANISH, 3: _SINGLE_PORTUGUESE}


def locking_table(lang: int) -> str:
    """The 128-character locking-shift table of a language id (default table if unknown)."""
    return _LOCKING.get(lang, BASIC_TABLE)


def single_table(lang: int) -> dict[int, str]:
    """The single-shift (extension) table of a language id (default extension if unknown)."""
    return _SINGLE.get(lang, EXTENSION_TABLE)
