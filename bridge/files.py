"""Reading a file an administrator named: the settings, a password file, a CSV, a template.

One way for every such file, so that each says the same when it cannot be used: a file
that is missing, a directory or unreadable, and one that is not UTF-8 text (a CSV saved
by a spreadsheet in its Windows code page, a settings file in Latin-1), each end in one
sentence naming the file and what to do, never in a traceback. A UTF-8 byte-order mark
at the start (what Windows editors and "CSV UTF-8" exports write) is dropped.
"""

from __future__ import annotations

from pathlib import Path

from bridge.errors import InputError


class UnreadableFile(InputError):
    """The file cannot be read as UTF-8 text; the message names it and says why."""


def read_text(path: Path) -> str:
    """The file's text (UTF-8, a byte-order mark dropped), or UnreadableFile."""
    return decode_utf8(read_bytes(path), str(path))


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
