"""MIME → text: the headers and the one body text an SMS is made of, from raw mail bytes.

Fast path: the stdlib parser with the compat32 policy (≈20× cheaper than policy.default),
headers decoded here (RFC 2047, raw 8-bit), charsets decoded with fallbacks. text/plain is
preferred; HTML is converted; attachments, inline images and winmail.dat are counted, not
used. Structural limits are checked *before* parsing (the parser recurses per nesting level).
The common mail - one text/plain part, no Content-Disposition, not base64 - is read
without the parser (`_plain`): its headers are split exactly as compat32 splits them and
its body is the bytes after the blank line; anything else takes the parser.
"""

from __future__ import annotations

import quopri
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32

from bridge.text.charset import decode_bytes, decode_header_value, not_a_charset
from bridge.text.controls import drop_controls
from bridge.text.errors import MimeTooComplex
from bridge.text.flowed import unflow
from bridge.text.html import html_to_text

# a header line that opens a nested entity: each costs the parser one recursion level
_CONTAINER = re.compile(rb"(?im)^content-type:[ \t]*(?:\r?\n[ \t]+)?(?:multipart|message)/")
_NEWLINES = re.compile(r"\r\n?")
# The header section the parser reads as header fields and a blank line: each line a
# field name (compat32's: printable ASCII but ":") and ":", or a continuation, ending in
# LF or CRLF. A bare CR, a "From " line, a line without a colon: not matched (the parser).
_HEADER_SECTION = re.compile(r"(?:[!-9;-~]+:[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*)*\r?\n")
# one field: name, and the value as compat32 keeps it (leading blanks of the first line
# dropped, continuation lines joined with their line breaks, the last line break dropped)
_FIELD = re.compile(r"([!-9;-~]+):[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)\r?\n")
# a Content-Type that is text/plain with nothing but charset/format/delsp tokens
_PLAIN_TYPE = re.compile(
    r"[ \t]*text/plain[ \t]*"
    r"((?:;[ \t]*(?:charset|format|delsp)=(\"?)[A-Za-z0-9_.:+-]+\2[ \t]*)*)",
    re.IGNORECASE,
)
_PLAIN_PARAM = re.compile(r";[ \t]*([A-Za-z]+)=\"?([A-Za-z0-9_.:+-]+)")
# what get_payload(decode=True) decodes other than quoted-printable: the parser's job
_PARSER_ENCODINGS = frozenset({"base64", "x-uuencode", "uuencode", "uue", "x-uue"})


class _RawHeaders(Compat32):
    """compat32, but header values come back as raw strings (decoded by us, not as Header)."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


_PARSER = BytesParser(policy=_RawHeaders())


@dataclass(frozen=True)
class MailText:
    """What the text engine needs from one mail."""

    subject: str
    body: str
    message_id: str | None
    from_header: str
    auto_submitted: str | None
    precedence: str | None
    received_count: int
    attachments: int  # parts ignored: attachments, inline images, winmail.dat, alternatives' media
    body_truncated: bool = False  # the body was longer than `max_body_chars` and was cut
    headers: tuple[tuple[str, str], ...] = ()  # every top-level header field, raw (name, value)


@dataclass
class _Walk:
    max_depth: int
    max_parts: int
    parts: int = 0
    attachments: int = 0
    max_chars: int = 200_000
    texts: dict[int, str] = field(default_factory=dict)  # id(part) -> decoded text

    def text(self, part: Message) -> str:
        key = id(part)
        if key not in self.texts:
            self.texts[key] = _leaf_text(part, self.max_chars)
        return self.texts[key]


_Leaves = list[tuple[str, Message]]  # (kind "plain"/"html", the leaf part)


def _leaf_text(part: Message, max_chars: int) -> str:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    label = part.get_content_charset()
    subtype = part.get_content_subtype()
    flowed = subtype != "html" and str(part.get_param("format") or "").lower() == "flowed"
    delsp = flowed and str(part.get_param("delsp") or "").lower() == "yes"
    return _decoded(data, label, subtype, flowed, delsp, max_chars)


def _decoded(
    data: bytes, label: str | None, subtype: str, flowed: bool, delsp: bool, max_chars: int
) -> str:
    """A text part's text: decoded, line breaks as LF, HTML converted, format=flowed undone."""
    if not data.isascii() and not_a_charset(label):
        raise MimeTooComplex(f"its text is labelled charset={label}, which is no character set")
    text = _NEWLINES.sub("\n", decode_bytes(data, label))
    if subtype == "html":
        # markup is at least half of typical mail HTML: convert no more than needed
        return html_to_text(text[: 2 * max_chars + 1])
    text = text[: max_chars + 1]
    if flowed:
        text = unflow(text, delsp=delsp)
    return text


_Fields = list[tuple[str, str]]


def _plain(raw: bytes, max_chars: int) -> tuple[_Fields, str] | None:
    """(header fields, body text) of a single text/plain mail, exactly as the parser reads
    them; None for any other mail (multipart, base64, a Content-Disposition, odd headers)."""
    head = _HEADER_SECTION.match(raw.decode("ascii", "surrogateescape"))
    if head is None:
        return None
    fields = [(m[1], m[2]) for m in _FIELD.finditer(head.group(), 0, head.end())]
    ctype = cte = None
    for name, value in fields:
        lower = name.lower()
        if lower == "content-type":
            ctype = value if ctype is None else ctype
        elif lower == "content-transfer-encoding":
            cte = value if cte is None else cte
        elif lower == "content-disposition":
            return None  # attachment or filename: the parser decides
    params: dict[str, str] = {}
    if ctype is not None:
        typed = _PLAIN_TYPE.fullmatch(ctype)
        if typed is None:
            return None
        for m in _PLAIN_PARAM.finditer(typed[1]):
            key = m[1].lower()
            if key in params:
                return None  # a repeated parameter: the parser decides which counts
            params[key] = m[2]
    cte = (cte or "").lower()
    if cte in _PARSER_ENCODINGS:
        return None
    data = raw[head.end() :]
    if cte == "quoted-printable":
        data = quopri.decodestring(data)
    charset = params.get("charset")
    text = _decoded(
        data,
        None if charset is None else charset.lower(),
        "plain",
        params.get("format", "").lower() == "flowed",
        params.get("delsp", "").lower() == "yes",
        max_chars,
    )
    return fields, text


def _is_body_text(part: Message) -> bool:
    if part.get_content_type() not in ("text/plain", "text/html"):
        return False
    return part.get_content_disposition() != "attachment" and part.get_filename() is None


def _best_alternative(results: list[_Leaves], walk: _Walk) -> _Leaves:
    """Prefer the alternative with non-empty plain text, then HTML, then the first."""
    for kind in ("plain", "html"):
        for leaves in results:
            if any(k == kind and walk.text(p).strip() for k, p in leaves):
                return leaves
    return next((r for r in results if r), [])


def _walk(part: Message, walk: _Walk, depth: int) -> _Leaves:
    walk.parts += 1
    if walk.parts > walk.max_parts:
        raise MimeTooComplex(f"the mail has more than {walk.max_parts} MIME parts")
    if depth > walk.max_depth:
        raise MimeTooComplex(f"the mail nests MIME parts deeper than {walk.max_depth} levels")
    # a leaf's payload is read only in `_leaf_text` (decode=True): the plain get_payload()
    # of an 8-bit leaf decodes with the charset parameter and fails on odd ones (`üñí`)
    payload = part.get_payload() if part.is_multipart() else None
    if part.get_content_maintype() == "multipart" and isinstance(payload, list):
        subs = [sub for sub in payload if isinstance(sub, Message)]
        subtype = part.get_content_subtype()
        if subtype == "alternative":
            return _best_alternative([_walk(sub, walk, depth + 1) for sub in subs], walk)
        if subtype == "related" and subs:
            leaves = _walk(subs[0], walk, depth + 1)
            for sub in subs[1:]:  # inline images and the like
                _walk(sub, walk, depth + 1)
            return leaves
        out: _Leaves = []
        for sub in subs:
            out += _walk(sub, walk, depth + 1)
        return out
    if _is_body_text(part):
        return [(part.get_content_subtype(), part)]
    walk.attachments += 1  # attachment, inline image, message/rfc822, winmail.dat, signature
    return []


def _prescan(raw: bytes, max_depth: int, max_parts: int) -> None:
    lowered = raw.lower()  # a container's type names one of these (the pattern's IGNORECASE)
    if b"multipart/" not in lowered and b"message/" not in lowered:
        return  # no container: nothing to count (most mails)
    limit = min(max_parts, max(max_depth, 1) * 50, 900)
    if lowered.count(b"content-type:") <= limit:
        return  # each container's line has one: no more than the limit (most multipart mail)
    for count, _ in enumerate(_CONTAINER.finditer(raw), start=1):
        if count > limit:
            raise MimeTooComplex(
                f"the mail has more than {limit} nested MIME containers (multipart or message)"
            )


def extract(
    raw: bytes, *, max_depth: int = 20, max_parts: int = 100, max_body_chars: int = 200_000
) -> MailText:
    """Parse raw mail bytes into `MailText`.

    Raises `MimeTooComplex` when the mail nests deeper than `max_depth`, has more than
    `max_parts` parts, or so many containers that parsing itself would be costly. A body
    longer than `max_body_chars` is cut there (`body_truncated`); no SMS can use more.
    """
    _prescan(raw, max_depth, max_parts)
    plain = _plain(raw, max_body_chars) if max_parts >= 1 and max_depth >= 0 else None
    if plain is not None:
        fields, body_texts = plain
        texts, attachments = [body_texts], 0
    else:
        fields, texts, attachments = _parsed(raw, max_depth, max_parts, max_body_chars)
    return _mail_text(fields, texts, attachments, max_body_chars)


def extract_text_part(
    fields: Sequence[tuple[str, str]],
    data: bytes,
    charset: str | None,
    *,
    max_body_chars: int = 200_000,
) -> MailText:
    """What `extract` reads of a mail that is one text/plain part with these header fields
    (raw, in order) and these body bytes once their transfer encoding is undone.

    For a caller that has just built such a mail itself (the REST API's request as a
    mail): its text without parsing the mail back (a base64 body takes the parser)."""
    text = _decoded(data, charset, "plain", False, False, max_body_chars)
    return _mail_text(list(fields), [text], 0, max_body_chars)


def _mail_text(
    fields: _Fields, texts: list[str], attachments: int, max_body_chars: int
) -> MailText:
    """The `MailText` of a mail's header fields and body texts."""
    body = drop_controls("\n\n".join(t.strip("\n") for t in texts if t.strip())).strip()
    truncated = len(body) > max_body_chars
    if truncated:
        body = body[:max_body_chars].rstrip()
    first: dict[str, str] = {}
    received = 0
    for name, value in fields:
        lower = name.lower()
        if lower not in first:
            first[lower] = value
        received += lower == "received"

    def header(name: str) -> str | None:
        value = first.get(name)
        return None if value is None else decode_header_value(value)

    msgid = header("message-id")
    return MailText(
        subject=header("subject") or "",
        body=body,
        message_id=msgid or None,
        from_header=header("from") or "",
        auto_submitted=header("auto-submitted"),
        precedence=header("precedence"),
        received_count=received,
        attachments=attachments,
        body_truncated=truncated,
        headers=tuple(fields),
    )


def _parsed(
    raw: bytes, max_depth: int, max_parts: int, max_chars: int
) -> tuple[_Fields, list[str], int]:
    """(header fields, body texts, attachments) through the stdlib parser: any mail."""
    try:
        msg = _PARSER.parsebytes(raw)
    except RecursionError:  # pragma: no cover - the pre-scan stops this first
        raise MimeTooComplex("the mail nests MIME parts too deeply to parse") from None
    walk = _Walk(max_depth, max_parts, max_chars=max_chars)
    texts = [walk.text(part) for _, part in _walk(msg, walk, 0)]
    return [(str(name), str(value)) for name, value in msg.items()], texts, walk.attachments
