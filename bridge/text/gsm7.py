"""GSM 03.38 alphabet: septet counting and the GSM-7 codec.

Payloads are *unpacked*: one septet per octet, as SMPP carries GSM-7 (the SMSC packs).
'@' is 0x00, so a payload is never a C string. 0x09 is drawn as 'Ç' (ETSI table); 'ç' is
accepted on input and encoded to 0x09 as well. The tables themselves (the default
alphabet, its extension table and the national language shift tables, inbound only)
live in `shift_tables`.
"""

from __future__ import annotations

import codecs

from bridge.errors import InputError
from bridge.text.shift_tables import BASIC_TABLE, EXTENSION_TABLE, locking_table, single_table

ESC = 0x1B

_BASIC_ENCODE: dict[str, int] = {ch: i for i, ch in enumerate(BASIC_TABLE) if i != ESC}
_BASIC_ENCODE["ç"] = 0x09  # Unicode's GSM0338.TXT maps 0x09 to 'ç'; accept both on input
_EXT_ENCODE: dict[str, int] = {ch: code for code, ch in EXTENSION_TABLE.items()}

#: character -> its encoded septets (1 or 2 octets, unpacked)
ENCODE_MAP: dict[str, bytes] = {ch: bytes((v,)) for ch, v in _BASIC_ENCODE.items()}
ENCODE_MAP.update({ch: bytes((ESC, v)) for ch, v in _EXT_ENCODE.items()})

# the same as str.translate's table: each septet as the Latin-1 character of its code
_TRANSLATE: dict[int, str] = {ord(ch): code.decode("latin-1") for ch, code in ENCODE_MAP.items()}

#: every character GSM-7 can carry (basic + extension, plus 'ç')
GSM7_CHARS: frozenset[str] = frozenset(ENCODE_MAP)
#: characters that cost two septets
EXTENSION_CHARS: frozenset[str] = frozenset(_EXT_ENCODE)

# ASCII text (most mail) is checked and encoded by bytes.translate, in C, instead of a
# set lookup and a dict translation per character: the ASCII characters GSM-7 carries
# (deleting them from the text's bytes leaves the ones it does not), those of them that
# are one septet, and the table from each of those to its septet.
#: every ASCII character GSM-7 can carry, as bytes
GSM7_ASCII: bytes = bytes(sorted(ord(ch) for ch in GSM7_CHARS if ch.isascii()))
_ONE_SEPTET = {ord(ch): v[0] for ch, v in ENCODE_MAP.items() if ch.isascii() and len(v) == 1}
_ASCII_ONE_SEPTET: bytes = bytes(sorted(_ONE_SEPTET))
_ASCII_SEPTETS: bytes = bytes.maketrans(
    _ASCII_ONE_SEPTET, bytes(_ONE_SEPTET[c] for c in _ASCII_ONE_SEPTET)
)


class Gsm7EncodeError(InputError, ValueError):
    """Raised by `encode_gsm7` when the text holds characters GSM-7 cannot carry."""

    def __init__(self, chars: list[str]) -> None:
        super().__init__("not in the GSM 03.38 alphabet: " + ", ".join(map(repr, chars)))
        self.chars = chars


def is_gsm7(text: str) -> bool:
    """True when every character of `text` exists in the basic or extension table."""
    if text.isascii():
        return not text.encode("ascii").translate(None, GSM7_ASCII)
    return GSM7_CHARS.issuperset(text)


def non_gsm7_chars(text: str) -> list[str]:
    """The distinct characters GSM-7 cannot carry, in order of first appearance."""
    if is_gsm7(text):
        return []
    return list(dict.fromkeys(ch for ch in text if ch not in GSM7_CHARS))


def gsm7_units(text: str) -> int:
    """Septets `text` needs: 1 per basic character, 2 per extension character.

    Raises `Gsm7EncodeError` for characters outside GSM-7.
    """
    bad = non_gsm7_chars(text)
    if bad:
        raise Gsm7EncodeError(bad)
    return len(text) + sum(text.count(ch) for ch in EXTENSION_CHARS)


def encode_gsm7(text: str) -> bytes:
    """Encode to unpacked septets (one per octet, ESC pairs for extension characters)."""
    if text.isascii():
        data = text.encode("ascii")
        if not data.translate(None, _ASCII_ONE_SEPTET):  # one septet per character
            return data.translate(_ASCII_SEPTETS)
    if not GSM7_CHARS.issuperset(text):
        raise Gsm7EncodeError(non_gsm7_chars(text))
    # every character is in the table, so each becomes its septet(s): the bytes of ENCODE_MAP
    return text.translate(_TRANSLATE).encode("latin-1")


def decode_gsm7(
    data: bytes, *, single_shift: int | None = None, locking_shift: int | None = None
) -> str:
    """Decode unpacked septets (the top bit of each octet is ignored).

    ESC + a code the extension table does not define shows the basic character (TS 23.038
    §6.2.1.1); ESC ESC shows a space; a lone trailing ESC is dropped. `single_shift` and
    `locking_shift` select national language tables (TS 23.038 Annex A, language ids 1
    Turkish, 2 Spanish, 3 Portuguese) as announced by UDH IE 0x24 / 0x25 of an MO message.
    """
    basic: str = BASIC_TABLE
    ext: dict[int, str] = EXTENSION_TABLE
    if locking_shift:
        basic = locking_table(locking_shift)
    if single_shift:
        ext = single_table(single_shift)
    if b"\x1b" not in data and b"\x9b" not in data:  # no escape: one character per octet
        # the table twice covers all 256 octets with their top bit ignored, in C
        return codecs.charmap_decode(data, "strict", basic + basic)[0]
    out: list[str] = []
    escaped = False
    for octet in data:
        code = octet & 0x7F
        if escaped:
            escaped = False
            if code == ESC:
                out.append(" ")
            else:
                out.append(ext.get(code) or basic[code])
        elif code == ESC:
            escaped = True
        else:
            out.append(basic[code])
    return "".join(out)
