"""RFC 3461 xtext: how ENVID and ORCPT travel in SMTP parameters, and back for the DSN."""

from __future__ import annotations

import re

_XTEXT = re.compile(r"\+([0-9A-Fa-f]{2})")


def xtext_encode(value: str) -> str:
    return "".join(c if "!" <= c <= "~" and c not in "+=" else f"+{ord(c):02X}" for c in value)


def xtext_decode(value: str) -> str:
    return _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), value)
