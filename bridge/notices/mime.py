"""Every mail the bridge writes is built here: a checked `Head`, then one of two bodies.

* `alternative`: a notice or report, text/plain + text/html (multipart/alternative),
  inside multipart/mixed when it has attachments (status mails, SMS-to-mail, list and
  monthly reports, the dirsync report);
* `delivery_report`: an RFC 3464 multipart/report (bridge/notices/dsn.py says what
  goes into it).

`head()` checks every header value (addresses through `bridge.mail_address`, names and
texts through `headers`), so no caller can write an unchecked one. Every message has
its fields in one order: From, To, Subject, Date, Message-ID, Auto-Submitted, then
Reply-To, In-Reply-To and References when there are such, then the MIME fields.

The stdlib's email package writes every message. Each body part is filled by its content
manager (`_part`), which chooses the transfer encoding; the direct notice's text parts
take the same steps without building a part (`_utf8_body`, with the package's `quoprimime`
encoder, line by line, keeping the encoding of lines that recur such as a template's own;
the tests compare both on generated texts). A notice is an `EmailMessage`, but a notice
without attachments is written directly, since building an `EmailMessage` parses and
re-folds every header and costs ≈ 10× as much (≈ 20× with a header to encode;
bench/notice_bench.py, figures in bench/README.md): headers that `EmailMessage` writes
back unchanged (printable ASCII, no folding, plain names) as the same bytes
(tests/unit/test_notice_mime.py compares the bytes, for generated texts too), and a
display name or subject that is not ASCII as RFC 2047 encoded words of its own
(`_direct_fields`; the tests compare what a reader decodes). Addresses that are not
plain and long ASCII fields are left to `EmailMessage`. A DSN is a compat32 message
(ASCII header values; never RFC 2047 encoded words in its delivery-status fields,
`_fields_block`).

Every mail written here is 7-bit, whatever it is about and wherever it goes: a text part
that is not ASCII is quoted-printable or base64 (never 8bit), header values that are
not ASCII are RFC 2047 encoded words, and a DSN returns a mail with 8-bit octets as
message/global or its header block as message/global-headers, quoted-printable
(`_returned`). The SMTP client sends neither BODY=8BITMIME nor SMTPUTF8 for a notice,
so any relay takes it unchanged, and a Maildir holds what a relay would have delivered.
"""

from __future__ import annotations

import binascii
import functools
import random
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from email import policy, quoprimime
from email.contentmanager import raw_data_manager
from email.message import EmailMessage, Message, MIMEPart
from email.utils import formatdate, make_msgid
from enum import StrEnum

from bridge.mail_address import header_address
from bridge.notices import headers

SUBJECT_LIMIT = 250  # characters of a subject
_MAX_LINE = 78  # policy.default.max_line_length: a longer header line would be folded
# What EmailMessage writes back unchanged: printable ASCII words, one space between them.
_PLAIN_VALUE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.+_-]+@[A-Za-z0-9.-]+")
_BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))  # the width EmailMessage's boundaries have


class _Compat32(policy.Compat32):
    """compat32, but a field whose value is printable ASCII words one space apart, on a
    line of at most `max_line_length`, is written as it is: what compat32's folding
    gives for such a field (tests/unit/test_notice_mime.py compares them over generated
    values), without the `email.header.Header` it builds and splits for every field
    (≈ 40 µs each; a DSN has about 24 fields, its returned mail's headers included)."""

    def _plain(self, name: str, value: object) -> bool:
        return (
            isinstance(value, str)
            and len(name) + 2 + len(value) <= (self.max_line_length or sys.maxsize)
            and _PLAIN_VALUE.fullmatch(value) is not None
        )

    def fold(self, name: str, value: str) -> str:
        if self._plain(name, value):
            return f"{name}: {value}{self.linesep}"
        return super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        if self._plain(name, value):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


# The policies of every message and part written here: 7-bit (`cte_type`), so the content
# manager encodes a text that is not ASCII as quoted-printable or base64, never as 8bit.
COMPAT32 = _Compat32(cte_type="7bit")
_DEFAULT = policy.default.clone(cte_type="7bit")


class AutoSubmitted(StrEnum):
    """RFC 3834: why nobody wrote the mail by hand (auto-responders do not answer it)."""

    REPLIED = "auto-replied"  # about a mail someone sent (a status mail, a DSN)
    GENERATED = "auto-generated"  # on its own (the dirsync report)


@dataclass(frozen=True, slots=True)
class Head:
    """The header values of one message, each checked (make it with `head()`)."""

    sender: headers.Mailbox
    to: tuple[headers.Mailbox, ...]
    subject: str
    domain: str  # the right-hand side of the Message-ID
    auto_submitted: AutoSubmitted
    reply_to: str
    in_reply_to: str
    references: str


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    mimetype: str  # maintype/subtype
    content: str  # written as UTF-8


def head(
    sender: tuple[object, str],
    to: Sequence[tuple[object, str]],
    subject: object,
    *,
    domain: str,
    auto_submitted: AutoSubmitted = AutoSubmitted.REPLIED,
    reply_to: object = "",
    in_reply_to: object = "",
    references: object = "",
) -> Head:
    """The checked head: `sender` and `to` as (display name, address) pairs (HeaderError
    if an address is not one), the subject cleaned and cut to SUBJECT_LIMIT characters,
    a `reply_to` that is not an address left out; `in_reply_to` names the mail this one
    is about (its first Message-ID), `references` its thread (default: that Message-ID)."""
    original = headers.msg_ids(in_reply_to)[:1]
    thread = (headers.msg_ids(references) or original) if original else []
    return Head(
        sender=headers.checked_mailbox(*sender),
        to=tuple(headers.checked_mailbox(name, address) for name, address in to),
        subject=headers.text(subject, SUBJECT_LIMIT),
        domain=domain,
        auto_submitted=auto_submitted,
        reply_to=header_address(str(reply_to or "")) or "",
        in_reply_to="".join(original),
        references=" ".join(thread),
    )


def _fields(h: Head) -> list[tuple[str, str]]:
    """The header fields of a message with this head, in their order."""
    fields = [
        ("From", h.sender.formatted()),
        ("To", ", ".join(m.formatted() for m in h.to)),
        ("Subject", h.subject),
        ("Date", formatdate(localtime=False)),
        ("Message-ID", make_msgid(domain=h.domain)),
        ("Auto-Submitted", h.auto_submitted.value),
    ]
    if h.reply_to:
        fields.append(("Reply-To", h.reply_to))
    if h.in_reply_to:
        fields.append(("In-Reply-To", h.in_reply_to))
        fields.append(("References", h.references))
    return fields


def _message(fields: Sequence[tuple[str, str]]) -> EmailMessage:
    msg = EmailMessage(policy=_DEFAULT)
    for name, value in fields:
        msg[name] = value
    return msg


def alternative_message(
    h: Head, text: str, html: str, attachments: Sequence[Attachment] = ()
) -> EmailMessage:
    """The notice as an `EmailMessage` (text/plain + text/html, then the attachments)."""
    return _alternative_message(_fields(h), text, html, attachments)


def _alternative_message(
    fields: Sequence[tuple[str, str]], text: str, html: str, attachments: Sequence[Attachment]
) -> EmailMessage:
    msg = _message(fields)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    for att in attachments:
        maintype, _, subtype = att.mimetype.partition("/")
        msg.add_attachment(att.content.encode(), maintype, subtype, filename=att.filename)
    return msg


def alternative(h: Head, text: str, html: str, attachments: Sequence[Attachment] = ()) -> bytes:
    """The notice as bytes (LF line ends): written directly unless it has attachments or
    a header only the mail library writes (`_direct_fields`)."""
    fields = _fields(h)
    if not attachments:
        direct = _direct_fields(h, fields)
        if direct is not None:
            return _direct_alternative(direct, text, html)
    return _alternative_message(fields, text, html, attachments).as_bytes()


def _direct_fields(h: Head, fields: Sequence[tuple[str, str]]) -> list[tuple[str, str]] | None:
    """The fields as the direct path writes them, or None where it does not.

    A plain head (`_plain_head`) as it is: the bytes EmailMessage writes. A display name
    or subject that is not ASCII — a name from the directory such as "Jürgen Müller", an
    SMS's text in an SMS-to-mail subject — as RFC 2047 encoded words (UTF-8, base64),
    folded into lines of at most 78 characters, which is what EmailMessage does
    differently for them (its own word split and encoding; the tests compare what a
    reader decodes from both); a long ASCII subject folded between its words. Anything
    else the mail library writes: an address or Reply-To that is not plain, several
    recipients with such a name, another field too long for its line.
    """
    if _plain_head(h, fields):
        return list(fields)
    if h.reply_to and not _PLAIN_ADDRESS.fullmatch(h.reply_to):
        return None
    written: list[tuple[str, str]] = []
    for name, value in fields:
        if name in ("From", "To"):
            field = _mailbox_field(name, (h.sender,) if name == "From" else h.to)
        elif _plain_field(name, value):
            field = value
        elif name == "Subject":
            field = _folded_field(name, value) if value.isascii() else _encoded_field(name, value)
        else:
            field = None
        if field is None:
            return None
        written.append((name, field))
    return written


def _plain_field(name: str, value: str) -> bool:
    """Would EmailMessage write this field's value unchanged on one line?"""
    return (
        len(name) + 2 + len(value) <= _MAX_LINE
        and "=?" not in value
        and _PLAIN_VALUE.fullmatch(value) is not None
    )


def _mailbox_field(name: str, mailboxes: Sequence[headers.Mailbox]) -> str | None:
    """From or To: plain as `_plain_head` accepts it, or one mailbox whose display name
    is not ASCII, the name as encoded words (`headers.phrase` made it a phrase)."""
    if not all(_PLAIN_ADDRESS.fullmatch(m.address) for m in mailboxes):
        return None
    if all(m.name.isascii() for m in mailboxes):
        value = ", ".join(m.formatted() for m in mailboxes)
        plain = all(not m.name or _PLAIN_VALUE.fullmatch(m.name) for m in mailboxes)
        return value if plain and _plain_field(name, value) else None
    if len(mailboxes) != 1:
        return None
    return _encoded_field(name, mailboxes[0].name, tail=f"<{mailboxes[0].address}>")


def _folded_field(name: str, value: str) -> str | None:
    """A long field of printable ASCII words one space apart, folded before a word where
    the line would pass 78 characters; None if a word does not fit on a line of its own
    or the value has `=?` (the mail library writes those)."""
    if "=?" in value or _PLAIN_VALUE.fullmatch(value) is None:
        return None
    words = value.split(" ")
    lines = [f"{name}: {words[0]}"]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) <= _MAX_LINE:
            lines[-1] += f" {word}"
        else:
            lines.append(f" {word}")
    if any(len(line) > _MAX_LINE for line in lines):
        return None
    return "\n".join(lines)[len(name) + 2 :]


_EW_MARKERS = len("=?utf-8?b??=")
_EW_MAX = 75  # characters of an encoded word (RFC 2047)


def _encoded_field(name: str, text: str, tail: str = "") -> str:
    """`text` as base64 encoded words of whole characters, each on a line of its own of
    at most 78 characters (RFC 2047: at most 75 per word), then `tail` (an address) on
    the last line or one of its own; without the leading "Name: ".

    A reader joins adjacent encoded words without the white space between them, so a
    word ends before a space of the text where one is near: the mail library's own
    parser puts a space between the words of a display name, and a second space between
    two words reads better than one inside a word.
    """
    data = text.encode("utf-8")
    lines: list[str] = []
    start = 0
    while start < len(data):
        room = min(_MAX_LINE - (len(name) + 2 if not lines else 1), _EW_MAX) - _EW_MARKERS
        end = min(start + room // 4 * 3, len(data))
        if end < len(data):
            space = data.rfind(b" ", start + 1, end + 1)
            if space > start + (end - start) // 2:
                end = space
            while data[end] & 0xC0 == 0x80:  # not inside a character
                end -= 1
        word = binascii.b2a_base64(data[start:end], newline=False).decode("ascii")
        lines.append(f"=?utf-8?b?{word}?=")
        start = end
    if tail:
        last = len(lines[-1]) + (len(name) + 2 if len(lines) == 1 else 1)
        if last + 1 + len(tail) <= _MAX_LINE:
            lines[-1] += f" {tail}"
        else:
            lines.append(tail)
    return "\n ".join(lines)


def _plain_head(h: Head, fields: Sequence[tuple[str, str]]) -> bool:
    """Would EmailMessage write every field exactly as given (no quoting, encoding or folding)?"""
    mailboxes = (h.sender, *h.to)
    if not all(_PLAIN_ADDRESS.fullmatch(m.address) for m in mailboxes):
        return False
    # A name of printable ASCII words: `formataddr` quotes one with specials (a comma, a
    # dot) and EmailMessage writes that back unchanged, as it does "SMS from +4917…".
    if not all(not m.name or _PLAIN_VALUE.fullmatch(m.name) for m in mailboxes):
        return False
    if h.reply_to and not _PLAIN_ADDRESS.fullmatch(h.reply_to):
        return False
    return all(_plain_field(name, value) for name, value in fields)


def _part(content: str | Message, subtype: str, cte: str | None = None) -> MIMEPart:
    """A body part filled by the stdlib's content manager (`set_content`), which chooses
    the transfer encoding unless `cte` names it: for text 7bit when it is ASCII and every
    line fits in 78 bytes, else quoted-printable or base64, whichever is shorter.

    The part is a compat32 one: its header fields stay plain strings instead of parsed
    objects (≈ 12 µs instead of ≈ 500 µs for a notice's HTML). The choice depends only on
    the line length (78) and on 8bit not being allowed, which COMPAT32 shares with
    `_DEFAULT`.
    """
    part = MIMEPart(policy=COMPAT32)
    raw_data_manager.set_content(part, content, subtype, cte=cte)
    return part


_MAX_BODY_LINE = 78  # policy.compat32.max_line_length, as policy.default's
_B64_CHUNK = _MAX_BODY_LINE // 4 * 3


def _utf8_body(text: str) -> tuple[str, bytes]:
    """(transfer encoding, body) of a UTF-8 text part, as the content manager chooses and
    writes them for a 7-bit policy with "\\n" line ends (`_part`): 7bit when the text is
    ASCII and every line fits in 78 bytes, else quoted-printable or base64, whichever the
    first ten lines say is shorter. The same steps without building a part (its header
    fields cost twice the encoding); tests/unit/test_notice_mime.py compares both."""
    lines = text.encode("utf-8").splitlines()
    body = b"\n".join(lines) + b"\n"
    if max(map(len, lines), default=0) <= _MAX_BODY_LINE and body.isascii():
        return "7bit", body
    sniff = b"\n".join(lines[:10]) + b"\n"
    sniff_qp = _qp_lines(lines[:10])
    if sum(map(len, sniff_qp)) + len(sniff_qp) > len(binascii.b2a_base64(sniff)):
        chunks = range(0, len(body), _B64_CHUNK)
        return "base64", b"".join(binascii.b2a_base64(body[i : i + _B64_CHUNK]) for i in chunks)
    encoded = sniff_qp + _qp_lines(lines[10:])
    return "quoted-printable", b"\n".join(encoded) + b"\n"


def _qp_lines(lines: Sequence[bytes]) -> list[bytes]:
    """Body lines (no line breaks) quoted-printable encoded as `quoprimime.body_encode`
    encodes them within a body: it encodes line by line, so a body's encoding is its
    lines' joined by "\\n" (and one at the end). Lines up to `_KEPT_LINE` bytes are kept:
    the template's own lines (most of a notice's HTML) recur in every notice."""
    return [_kept_qp_line(x) if len(x) <= _KEPT_LINE else _encode_qp_line(x) for x in lines]


_KEPT_LINE = 1000  # bytes: at most ≈ 2,048 × 4 kB of encoded lines are kept


def _encode_qp_line(line: bytes) -> bytes:
    return quoprimime.body_encode(line.decode("latin-1"), _MAX_BODY_LINE).encode("ascii")


_kept_qp_line = functools.lru_cache(maxsize=2048)(_encode_qp_line)


def _text_part(subtype: str, text: str, *, mime_version: bool) -> bytes:
    """A UTF-8 text part as `EmailMessage.set_content(text)` writes it."""
    cte, body = _utf8_body(text)
    head = f'Content-Type: text/{subtype}; charset="utf-8"\nContent-Transfer-Encoding: {cte}\n'
    if mime_version:  # as EmailMessage writes the part add_alternative adds
        head += "MIME-Version: 1.0\n"
    return head.encode("ascii") + b"\n" + body


def _boundary(parts: bytes) -> str:
    """A boundary like EmailMessage's, not found in the parts."""
    while True:
        boundary = "=" * 15 + f"{random.randrange(sys.maxsize):0{_BOUNDARY_DIGITS}d}" + "=="
        if b"--" + boundary.encode("ascii") not in parts:
            return boundary


def _direct_alternative(fields: Sequence[tuple[str, str]], text: str, html: str) -> bytes:
    """The bytes `_alternative_message(fields, text, html, ()).as_bytes()` gives."""
    plain = _text_part("plain", text, mime_version=False)
    rich = _text_part("html", html, mime_version=True)
    boundary = _boundary(plain + rich)
    head = "".join(f"{name}: {value}\n" for name, value in fields)
    head += f'MIME-Version: 1.0\nContent-Type: multipart/alternative;\n boundary="{boundary}"\n'
    mark = f"\n--{boundary}\n".encode("ascii")
    return b"".join(
        (head.encode("ascii"), mark, plain, mark, rich, f"\n--{boundary}--\n".encode("ascii"))
    )


def _fields_block(pairs: Sequence[tuple[str, str]]) -> Message:
    """One block of delivery-status fields (empty values left out), ASCII: the builder
    writes every value so (bridge/notices/dsn.py); a character that is not ASCII all the
    same is written `\\x{HEX}` (RFC 6533's escape), since compat32 would write the field
    as RFC 2047 encoded words, which a DSN reader does not decode."""
    block = Message(policy=COMPAT32)
    for name, value in pairs:
        if value:
            block[name] = value if value.isascii() else _escaped(value)
    return block


def _escaped(value: str) -> str:
    return "".join(ch if ch.isascii() else f"\\x{{{ord(ch):X}}}" for ch in value)


def delivery_report(
    h: Head,
    human: str,
    per_message: Sequence[tuple[str, str]],
    per_recipient: Sequence[tuple[str, str]],
    original: bytes,
    *,
    full: bool,
) -> Message:
    """An RFC 3464 report: the human-readable text, the message/delivery-status fields,
    and the original mail (`full`) or its header block (`_returned`).

    A compat32 message like its parts: its header values are ASCII and need no parsed
    header objects (an `EmailMessage` costs ≈ 3× as much), and compat32 folds long
    values at spaces, never into RFC 2047 encoded words (a DSN field is not a text).
    """
    report = Message(policy=COMPAT32)
    for name, value in _fields(h):
        report[name] = value
    report["MIME-Version"] = "1.0"
    report["Content-Type"] = "multipart/report; report-type=delivery-status"
    status = Message(policy=COMPAT32)
    status["Content-Type"] = "message/delivery-status"
    status.set_payload([_fields_block(per_message), _fields_block(per_recipient)])
    report.set_payload([_part(human, "plain"), status, _returned(original, full=full)])
    return report


def _returned(original: bytes, *, full: bool) -> Message:
    """The returned mail (`full`) or its header block, as a 7-bit part.

    An ASCII mail is message/rfc822 (7bit), its header block text/rfc822-headers (7bit,
    or quoted-printable for a line over 78 characters, as RFC 6522 allows). A mail with
    8-bit octets — an SMTPUTF8 client's UTF-8 headers, an 8BITMIME body — cannot be
    either: message/rfc822 allows no encoding but 7bit, 8bit or binary (RFC 2046 5.2.1),
    and text/rfc822-headers holds ASCII headers. It is message/global (RFC 6532), its
    header block message/global-headers (RFC 6533, UTF-8, no charset parameter), both
    quoted-printable, which message/global allows as any encoding and message/global-
    headers "through a 7-bit-only SMTP infrastructure": a reader gets the mail's octets
    back, and no relay needs SMTPUTF8 or 8BITMIME. Header octets that are not UTF-8 are
    read as U+FFFD; the whole mail is returned as it came (an ASCII one unparsed, so not
    refolded)."""
    if full:
        content = original.replace(b"\r\n", b"\n")
        if content.isascii():
            return _message_part("rfc822", "7bit", content.decode("ascii"))
        return _message_part("global", "quoted-printable", _qp(content))
    block = original.decode("utf-8", "replace").replace("\r\n", "\n")
    if block.isascii():
        lines = block.splitlines()
        seven_bit = max(map(len, lines), default=0) <= _MAX_BODY_LINE
        return _part(block, "rfc822-headers", "7bit" if seven_bit else "quoted-printable")
    return _message_part("global-headers", "quoted-printable", _qp(block.encode("utf-8")))


def _qp(content: bytes) -> str:
    """Quoted-printable of a mail or header block (LF line ends kept as line ends)."""
    return binascii.b2a_qp(content, istext=True).decode("ascii")


def _message_part(subtype: str, cte: str, payload: str) -> Message:
    """A message/`subtype` part whose body is `payload` as written (the generator writes
    a message part's text payload unchanged)."""
    part = MIMEPart(policy=COMPAT32)
    part["Content-Type"] = f"message/{subtype}"
    part["Content-Transfer-Encoding"] = cte
    part.set_payload(payload)
    return part
