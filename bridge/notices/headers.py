"""Header values of the mails the bridge writes: checked addresses, cleaned names and texts.

The one place where values from outside (an SMS sender, a directory display name, a
mail's subject or Message-ID, DSN parameters, an SMSC's error text) become header
values. Every address passes `bridge.mail_address.header_address` (the bridge's one
address check, ASCII), also in `number_address` (an E.164 number at a bridge domain);
everything else passes `text`, `phrase`, `xtext` or `msg_ids`. So no CR, LF or other control
character reaches a header (the notice is sent, not held), and no header names an
address the bridge did not check (an alphanumeric SMS sender gets no reply address).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from email.utils import formataddr

from bridge.errors import InputError
from bridge.mail_address import header_address

_E164 = re.compile(r"\+[1-9][0-9]{6,14}", re.ASCII)
_MSG_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,250}@[\x21-\x3b\x3d\x3f-\x7e]{1,250}>")
_PHRASE_DROP = str.maketrans("", "", '<>@"\\')
_PRINTABLE_ASCII = re.compile(r"[ -~]*")
# `=?charset?B|Q?`: the start of an encoded word. A decoded subject or an SMS may hold one
# as text; the mail library would decode it a second time when it writes the header, and
# failed to write it at all for undecodable octets (`=?utf-8?q?=FF?=`): the notice held.
_ENCODED_WORD_START = re.compile(r"=\?(?=[^?\s]*\?[bBqQ]\?)")
_CONTROL = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
TEXT_LIMIT = 200  # characters of one outside value in a header (a subject, a DSN field)
NAME_LIMIT = 64  # characters of a display name
SENDER_LIMIT = 21  # characters of an SMS sender shown (SMPP's source_addr field holds 20)


class HeaderError(InputError, ValueError):
    """An address that cannot be written into a header; the message says which."""


def text(value: object, limit: int = TEXT_LIMIT) -> str:
    """An unstructured header value: control, format and separator characters (CR, LF,
    NUL, bidi overrides …) become spaces, runs of white space one space, the start of
    what reads like an encoded word (`=?utf-8?q?`) `= ?`, at most `limit` characters."""
    raw = str(value)
    if not _PRINTABLE_ASCII.fullmatch(raw):  # the common case needs no character loop
        raw = "".join(
            " " if ch.isspace() or unicodedata.category(ch) in _CONTROL else ch for ch in raw
        )
    cleaned = " ".join(raw.split())
    if "=?" in cleaned:  # text that reads like an RFC 2047 encoded word stays text
        cleaned = _ENCODED_WORD_START.sub("= ?", cleaned)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1].rstrip() + "…"


def phrase(value: object) -> str:
    """A display name: `text` without `<`, `>`, `@`, quotes or backslashes, so a name can
    neither carry nor imitate an address."""
    return text(str(value).translate(_PHRASE_DROP), NAME_LIMIT)


def is_e164(number: object) -> bool:
    """`+` and 7 to 15 digits, the first not 0."""
    return isinstance(number, str) and _E164.fullmatch(number) is not None


def number_address(number: object, domain: str) -> str | None:
    """`<number>@<domain>` for an E.164 number (a mail to it reaches that phone), else None
    (an alphanumeric sender, a short code, anything else cannot be answered by mail)."""
    if not is_e164(number):
        return None
    checked = _number_domain(domain)
    return None if checked is None else f"{number}@{checked}"


@functools.lru_cache(maxsize=64)  # the bridge's domains: a few
def _number_domain(domain: str) -> str | None:
    """`domain` as an address at it is written, if the longest E.164 number's address there
    passes `header_address` (checked once per domain, not per SMS: an E.164 local part is
    always valid, and no shorter one makes the address too long)."""
    checked = header_address(f"+{'1' * 15}@{domain}")
    return None if checked is None else checked.rpartition("@")[2]


def msg_ids(value: object) -> list[str]:
    """The well-formed `<left@right>` message ids in `value` (In-Reply-To, References)."""
    return _MSG_ID.findall(str(value or ""))


def xtext(value: object, limit: int = 500) -> str:
    """A DSN field from a client (ENVID, ORCPT address): as given when it is printable
    ASCII, else xtext-encoded (RFC 3461 section 4: `+`, `=` and every character outside
    `!`..`~`, e.g. CR and LF, as `+XX` of its UTF-8 bytes)."""
    raw = str(value or "")
    if all("!" <= ch <= "~" for ch in raw):
        return raw[:limit]
    return "".join(
        ch if "!" <= ch <= "~" and ch not in "+=" else "".join(f"+{b:02X}" for b in ch.encode())
        for ch in raw
    )[:limit]


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A display name and a checked address (both safe to write as they are)."""

    name: str
    address: str

    def formatted(self) -> str:
        return formataddr((self.name, self.address))


def checked_mailbox(name: object, address: str) -> Mailbox:
    """The cleaned name and checked address; HeaderError if the address is not one."""
    checked = header_address(address)
    if checked is None:
        local = address.rpartition("@")[0]
        why = (
            " (a local part that is not ASCII needs SMTPUTF8, which the bridge does not use)"
            if local and not local.isascii()
            else ""
        )
        raise HeaderError(f"not a mail address the bridge writes into a header: {address!r}{why}")
    return Mailbox(phrase(name or ""), checked)


def sender_label(source: object) -> str:
    """How an SMS sender is shown in a notice: an E.164 number as it is; any other sender
    (an alphanumeric name, a short code) as a `phrase`, so a sender like `<x@evil.example>`
    can neither break a header nor pass for a mail address."""
    if is_e164(source):
        return str(source)
    return phrase(source)[:SENDER_LIMIT] or "(no sender)"
