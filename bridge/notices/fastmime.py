"""The common notice (plain + HTML alternative, short ASCII headers) as bytes, built directly.

`EmailMessage` with `policy.default` parses and re-folds every header it is given,
which costs ≈ 1 ms per notice; for a message whose headers need neither encoding nor
folding, this writes the bytes `EmailMessage.as_bytes()` would write (same header
order, MIME layout, transfer encodings; tests/unit/test_notice_mime.py compares them).
`alternative()` returns None whenever a header falls outside that simple case: the
caller then builds the message with `EmailMessage`.
"""

from __future__ import annotations

import email.contentmanager
import random
import re
import sys
from collections.abc import Callable, Sequence
from email import policy
from typing import cast

# What policy.default would write back unchanged: printable ASCII, no folding needed.
_PLAIN_VALUE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")
_SIMPLE_NAME = re.compile(r"[A-Za-z0-9]+(?: [A-Za-z0-9]+)*")
_SIMPLE_ADDRESS = re.compile(r"[A-Za-z0-9.+_-]+@[A-Za-z0-9.-]+")
_MAX_LINE = 78
_WIDTH = len(repr(sys.maxsize - 1))

_encode_text = cast(
    Callable[[str, str, str | None, policy.Policy], tuple[str, str]],
    email.contentmanager._encode_text,  # type: ignore[attr-defined]  # what set_content uses
)


def simple_address(name: str, address: str) -> str | None:
    """`Name <address>` when policy.default would write it like that, else None."""
    if not _SIMPLE_ADDRESS.fullmatch(address):
        return None
    if not name:
        return address
    return f"{name} <{address}>" if _SIMPLE_NAME.fullmatch(name) else None


def _header_ok(name: str, value: str) -> bool:
    """Short printable ASCII without encoded words: written back exactly as given."""
    if len(name) + 2 + len(value) > _MAX_LINE or "=?" in value:
        return False
    return bool(_PLAIN_VALUE.fullmatch(value))


def _part(subtype: str, text: str, *, mime_version: bool) -> str:
    cte, payload = _encode_text(text, "utf-8", None, policy.default)
    head = f'Content-Type: text/{subtype}; charset="utf-8"\nContent-Transfer-Encoding: {cte}\n'
    if mime_version:
        head += "MIME-Version: 1.0\n"
    return f"{head}\n{payload}"


def _boundary(text: str) -> str:
    base = "=" * 15 + f"%0{_WIDTH}d" % random.randrange(sys.maxsize) + "=="
    if "--" + base not in text:  # the common case, without compiling a pattern
        return base
    b, n = base, 0
    while re.search("^--" + re.escape(b) + "(--)?$", text, re.MULTILINE):
        b, n = f"{base}.{n}", n + 1
    return b


def alternative(headers: Sequence[tuple[str, str]], text: str, html: str) -> bytes | None:
    """A multipart/alternative message (text/plain, text/html) as `EmailMessage` would
    serialise it, or None when a header would need encoding or folding."""
    if not all(_header_ok(name, value) for name, value in headers):
        return None
    parts = _part("plain", text, mime_version=False), _part("html", html, mime_version=True)
    boundary = _boundary("\n".join(parts))
    out = [f"{name}: {value}\n" for name, value in headers]
    out.append(f'MIME-Version: 1.0\nContent-Type: multipart/alternative;\n boundary="{boundary}"\n')
    out.append(f"\n--{boundary}\n{parts[0]}\n--{boundary}\n{parts[1]}\n--{boundary}--\n")
    # 8bit parts carry their UTF-8 bytes as surrogate escapes (as in `EmailMessage`)
    return "".join(out).encode("utf-8", "surrogateescape")
