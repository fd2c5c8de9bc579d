"""RFC 3461 xtext: how ENVID and ORCPT travel in SMTP parameters, and back for the DSN."""

from __future__ import annotations

import re

_XTEXT = re.compile(r"\+([0-9A-Fa-f]{2})")
_SIGNS = re.compile(r"\+(2B|3D)", re.IGNORECASE)


def xtext_encode(value: str) -> str:
    return "".join(c if "!" <= c <= "~" and c not in "+=" else f"+{ord(c):02X}" for c in value)


def xtext_decode(value: str) -> str:
    """`value` decoded, or as written where it was sent without the encoding.

    Clients that skip the encoding are common (`ORCPT=rfc822;SMS=+491701234567@…`): read
    as xtext, its `+49` would become `I`. An encoder writes `=` as `+3D` and never encodes
    a character that may stand as itself (printable ASCII other than `+` and `=`), so a
    value with a raw `=` or with such a code was not encoded: of it only `+2B` and `+3D`
    (a half-done encoding of `+` and `=`) are read, the rest is taken as written. (Other
    codes, of control characters and spaces, are read: the DSN writes them back as the
    same codes.)"""
    if "=" in value or any(
        "!" <= (c := chr(int(code, 16))) <= "~" and c not in "+=" for code in _XTEXT.findall(value)
    ):
        return _SIGNS.sub(lambda m: "+" if m.group(1).upper() == "2B" else "=", value)
    return _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), value)
