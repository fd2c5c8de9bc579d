"""Control characters in text that came from outside: dropped where the text comes in.

Pure. Text reaches the bridge decoded from bytes somebody else chose: a quoted-printable
`=00` or `=1B` in a mail body, an RFC 2047 encoded word in a subject or an `X-SMS-`
header, a `&#1;` in HTML, a UCS-2 or 8-bit MO, a directory attribute. Control
characters in it (NUL, BEL, ESC, DEL, the C1 range U+0080–U+009F) have no glyph on a
phone, no meaning in a name, and PostgreSQL refuses to store NUL at all: one such
character made a mail fail with `451` there, again at every retry, until its sender gave
up. So the decoders drop them: texts keep their line breaks and tabs (`drop_controls`),
one-line values (header values, names) get a space for a line break or tab (`one_line`).
Format characters (zero-width joiner, bidi marks) are not control characters and stay.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # all but \t \n \r
_ANY = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BREAKS = re.compile(r"[\t\n\r]")


def drop_controls(text: str) -> str:
    """`text` without control characters other than tab, line feed and carriage return."""
    return _CONTROLS.sub("", text)


def one_line(text: str) -> str:
    """`text` without control characters, a tab or line break becoming a space."""
    return _BREAKS.sub(" ", _CONTROLS.sub("", text))


@dataclass(frozen=True, slots=True)
class ControlFound:
    """A control character in a named value: where, and which."""

    name: str
    position: int  # 1-based, as said to people
    char: str

    @property
    def code(self) -> str:
        return f"U+{ord(self.char):04X}"

    def sentence(self) -> str:
        """What the sender is told: `NAME: control character U+0000 at position 3; remove it`."""
        return f"{self.name}: control character {self.code} at position {self.position}; remove it"


def control_in(
    fields: Iterable[tuple[str, object]], *, allow_breaks: bool = False
) -> ControlFound | None:
    """The first control character in the text values of `fields` (name, value): what a
    request's parameters or form fields are checked with before they reach a query."""
    for name, value in fields:
        if isinstance(value, str):
            at = first_control(value, allow_breaks=allow_breaks)
            if at is not None:
                return ControlFound(name, at + 1, value[at])
    return None


def first_control(text: str, *, allow_breaks: bool = False) -> int | None:
    """Where the first control character is (tab, LF and CR not counted with
    `allow_breaks`), or None."""
    found = (_CONTROLS if allow_breaks else _ANY).search(text)
    return None if found is None else found.start()
