"""Reading a file an administrator named: the settings, a password file, a CSV, a template.

One way for every such file, so that each says the same when it cannot be used: a file
that is missing, a directory or unreadable, and one that is not UTF-8 text (a CSV saved
by a spreadsheet in its Windows code page, a settings file in Latin-1), each end in one
sentence naming the file and what to do, never in a traceback. A UTF-8 byte-order mark
at the start (what Windows editors and "CSV UTF-8" exports write) is dropped.

A TOML file (the settings, numbers.toml, a tenants file, dirsync's settings) is parsed
by `parse_toml`: not valid TOML, or a string with a control character (TOML writes one
as `"\\u0000"`; only tab and line breaks are text), is one sentence naming the key. JSON
(a push template file, a REST API body) is parsed by `parse_json`, which refuses what
Python's parser takes beyond JSON: NaN, Infinity, an unpaired surrogate `"\\ud800"`.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bridge.errors import InputError
from bridge.text.controls import ControlFound, control_in

_SURROGATE = re.compile("[\ud800-\udfff]")
# How deep arrays and objects (tables) may nest in a JSON or TOML document we read. The
# parsers recurse until a recursion limit: JSON's differs by version (about 1,000 levels
# on 3.11, far more on 3.13), TOML's by how deep the caller's stack is (tomllib fails
# from about 330 levels of inline tables). Far below both, the same document gets the
# same sentence on every Python and from every caller; no settings file, template or API
# body needs more.
MAX_DEPTH = 100
_TOO_DEEP = f"nested too deeply to read (more than {MAX_DEPTH} levels of arrays and objects)"


class UnreadableFile(InputError):
    """The file cannot be used: not readable, not UTF-8 text, not valid TOML or JSON, or a
    control character in a TOML string (an unpaired surrogate in a JSON one); the message
    names the file (and key) and says why."""


def read_text(path: Path) -> str:
    """The file's text (UTF-8, a byte-order mark dropped), or UnreadableFile."""
    return decode_utf8(read_bytes(path), str(path))


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML file's table (`parse_toml`), or UnreadableFile."""
    return parse_toml(read_text(path), str(path))


def parse_toml(text: str, where: str = "") -> dict[str, Any]:
    """The TOML text's table, or UnreadableFile saying what is wrong (after `where: `, the
    file, when given): not TOML, nested deeper than `MAX_DEPTH`, or a string with a control
    character other than tab and line breaks."""
    prefix = f"{where}: " if where else ""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UnreadableFile(f"{prefix}not valid TOML: {exc}") from None
    except RecursionError:
        raise UnreadableFile(f"{prefix}{_TOO_DEEP}") from None
    if _deeper_than(data, MAX_DEPTH):
        raise UnreadableFile(f"{prefix}{_TOO_DEEP}")
    found = _control_in(data)
    if found is not None:
        raise UnreadableFile(prefix + found.sentence())
    return data


def parse_json(text: str | bytes, where: str = "") -> Any:
    """The JSON value of `text`, or UnreadableFile saying what is wrong (after `where: `,
    when given): not JSON as RFC 8259 has it (Python's parser also takes NaN and Infinity,
    which no other reader does), nested deeper than `MAX_DEPTH`, or a string or
    key with an unpaired surrogate (`"\\ud800"`: valid JSON, but no character, and neither
    database can store it)."""
    prefix = f"{where}: " if where else ""
    try:
        data = json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raise UnreadableFile(f"{prefix}{_TOO_DEEP}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnreadableFile(f"{prefix}not valid JSON: {exc}") from None
    if _deeper_than(data, MAX_DEPTH):
        raise UnreadableFile(f"{prefix}{_TOO_DEEP}")
    found = _surrogate_in(data)
    if found is not None:
        key, ch = found
        raise UnreadableFile(
            f"{prefix}{key}: an unpaired surrogate \\u{ord(ch):04x} is no character; write "
            "the text as UTF-8, or a character beyond U+FFFF as a pair of escapes"
        )
    return data


def _deeper_than(value: object, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels below `value` (not
    recursive)."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list | dict):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((v, depth + 1) for v in children if isinstance(v, list | dict))
    return False


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _surrogate_in(value: object) -> tuple[str, str] | None:
    """(where, the character) of the first unpaired surrogate in a string or key."""
    for name, text, _ in _texts(value):
        if found := _SURROGATE.search(text):
            return name, found.group()
    return None


def _control_in(value: object) -> ControlFound | None:
    """The first control character in a string or a key below `value` (tab and line
    breaks are allowed in strings, not in keys)."""
    for name, text, is_key in _texts(value):
        if found := control_in([(name, text)], allow_breaks=not is_key):
            return found
    return None


def _texts(value: object) -> Iterator[tuple[str, str, bool]]:
    """(where, text, is a key) of every string and key below a parsed TOML or JSON value,
    in document order, named by key path (`a.b[2]`, `a key in a.b`). Not recursive: JSON
    may nest as deep as the parser allows."""
    stack: list[tuple[str, object, bool]] = [("", value, False)]
    while stack:
        path, item, is_key = stack.pop()
        if isinstance(item, str):
            yield (path or "(top level)"), item, is_key
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", v, False) for i, v in reversed(list(enumerate(item))))
        elif isinstance(item, dict):
            for name, v in reversed(list(item.items())):
                stack.append((f"{path}.{name}" if path else str(name), v, False))
                stack.append((f"a key in {path or '(top level)'}", str(name), True))


def read_bytes(path: Path) -> bytes:
    """The file's bytes, or UnreadableFile (missing, a directory, no permission)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"{path}: cannot read: {exc.strerror or exc}") from None


def decode_utf8(data: bytes, where: str) -> str:
    """`data` as UTF-8 text (a byte-order mark dropped), or UnreadableFile saying where the
    first byte that is not UTF-8 is."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UnreadableFile(
            f"{where}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
            "save it as UTF-8"
        ) from None
