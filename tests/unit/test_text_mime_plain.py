"""The plain-mail reading gives exactly what the parser gives, and is used only where it can.

`bridge.text.mime._plain` reads a single text/plain mail without the stdlib parser; for
every mail of the corpus, the examples and many generated odd mails, whatever it returns
must equal what `_parsed` (the parser) returns, and `extract` must give the same either way.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bridge.text import mime
from bridge.text.charset import decode_header_value
from bridge.text.errors import MimeTooComplex
from bridge.text.mime import MailText

ROOT = Path(__file__).resolve().parents[2]
MAILS = sorted(ROOT.glob("tests/data/**/*.eml")) + sorted(ROOT.glob("examples/**/*.eml"))
MAX = 200_000


def _outcome(fn: object, *args: object) -> object:
    try:
        return fn(*args)  # type: ignore[operator]
    except (MimeTooComplex, UnicodeError, LookupError, ValueError) as exc:
        return type(exc), str(exc)


def _same(raw: bytes, max_chars: int = MAX) -> bool:
    """True if the plain reading took the mail; asserts it equals the parser's reading."""
    plain = _outcome(mime._plain, raw, max_chars)
    if plain is None:
        return False
    parsed = _outcome(mime._parsed, raw, 20, 100, max_chars)
    if isinstance(plain, tuple) and len(plain) == 2 and isinstance(plain[0], list):
        fields, text = plain
        assert parsed == (fields, [text], 0), raw
    else:  # the same fault
        assert parsed == plain, raw
    return True


def test_the_benchmark_mail_and_corpus_mails_take_the_plain_reading() -> None:
    alert = (
        b"From: Monitor <alerts@example.org>\r\nTo: <+491701234567@sms.example.org>\r\n"
        b"Subject: Alert 1\r\nDate: Sat, 22 Nov 2025 15:00:00 +0000\r\n"
        b"Message-ID: <1.1@monitor.example.org>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n"
        b"\r\nAlarm: disk usage on host db-00001 reached 91%.\r\n"
    )
    assert _same(alert)
    taken = [path.name for path in MAILS if _same(path.read_bytes())]
    assert len(MAILS) >= 40
    assert 5 <= len(taken) < len(MAILS), taken  # plain ones read directly, the rest parsed


@pytest.mark.parametrize("path", MAILS, ids=lambda p: p.name)
def test_every_mail_of_the_corpus_reads_the_same(path: Path) -> None:
    raw = path.read_bytes()
    _same(raw)
    _same(raw.replace(b"\r\n", b"\n"))
    _same(raw.replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n"))
    _same(raw, 40)


# pieces of odd mails: combined at random below
_HEADERS = [
    "Subject: plain",
    "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus =?iso-8859-1?q?K=F6ln?=",
    "Subject: folded\r\n  over two lines",
    "Subject: folded\n\tover a tab",
    "Subject:",
    "Subject: \r\n \r\n",
    "Subject:   lots of blanks   ",
    "SUBJECT: upper case",
    "subject: second subject",
    "Subject: raw 8-bit Prüfung",
    "Subject: a\x0bvertical tab\x1cfile sep\x85next line",
    "Subject: nul\x00byte",
    "From: =?utf-8?b?SsO8cmdlbg==?= <j@example.com>",
    "Message-ID: <abc@example.com>",
    "Message-ID:",
    "Received: from a by b",
    "Received: from c\r\n\tby d",
    "received: lower",
    "Auto-Submitted: auto-replied",
    "Precedence: bulk",
    "X-Odd!Name#: value",
    "X-Colon: a: b: c",
    ":no name",
    "no colon at all",
    " continuation first",
    "From someone@example.com Sat Nov 22 15:00:00 2025",
    "X-Bare: carriage\rreturn",
    "X-Double: cr\r\r\n",
    "MIME-Version: 1.0",
]
_TYPES = [
    None,
    "text/plain",
    "TEXT/Plain",
    "text/plain; charset=utf-8",
    'text/plain; charset="UTF-8"',
    "text/plain;charset=iso-8859-1",
    "text/plain; charset=us-ascii; format=flowed",
    "text/plain; format=flowed; delsp=yes; charset=utf-8",
    "text/plain; Format=Flowed; DelSp=Yes",
    "text/plain; charset=utf-8; charset=iso-8859-1",
    "text/plain; charset=utf-8; charset=koi8-r",
    "text/plain; charset=koi8-r; charset=utf-8",
    "text/plain; charset=",
    'text/plain; charset=""',
    "text/plain;",
    "text/plain; charset = utf-8",
    "text/plain; charset=x-unknown",
    "text/plain; charset=idna",
    "text/plain; charset=base64",
    "text/plain; charset*=utf-8''%75tf-8",
    "text/plain; name=note.txt",
    "text/plain (comment)",
    "text/plain; charset=utf-8\r\n\tformat=flowed",
    "text/plain\r\n ; charset=utf-8",
    "text/plainish",
    "text/html; charset=utf-8",
    "text/enriched",
    "application/octet-stream",
    "message/rfc822",
    "multipart/mixed; boundary=b1",
    "multipart/alternative; boundary=b1",
    "text",
]
_ENCODINGS = [
    None,
    "7bit",
    "8bit",
    "8BIT",
    "binary",
    "quoted-printable",
    "Quoted-Printable",
    "quoted-printable ",
    "base64",
    "x-uuencode",
    "garbage",
]
_DISPOSITIONS = [None, None, None, "inline", "attachment", "inline; filename=a.txt"]
_BODIES = [
    "Hello, world.\r\nSecond line.\r\n",
    "",
    "flowed \r\nlines here \r\nend\r\n",
    "Gr=C3=BC=C3=9Fe soft=\r\nbreak =3D equal\r\n",
    "Prüfung läuft\r\n",
    "Pr\xfcfung latin-1\r\n",
    "SGVsbG8gYmFzZTY0\r\n",
    "--b1\r\nContent-Type: text/plain\r\n\r\npart one\r\n--b1--\r\n",
    "bare\rcarriage\rreturns\n",
    "x" * 300 + "\r\n",
    "\r\n\r\nleading blank lines\r\n",
]


def _mail(rng: random.Random) -> bytes:
    lines = rng.sample(_HEADERS, rng.randint(0, 6))
    for name, values in (
        ("Content-Type", _TYPES),
        ("Content-Transfer-Encoding", _ENCODINGS),
        ("Content-Disposition", _DISPOSITIONS),
    ):
        for _ in range(rng.choice((1, 1, 1, 2))):
            value = rng.choice(values)
            if value is not None:
                lines.insert(rng.randint(0, len(lines)), f"{name}: {value}")
    rng.shuffle(lines)
    body = rng.choice(_BODIES)
    eol = rng.choice(("\r\n", "\n"))
    head = "".join(line + eol for line in lines)
    text = head + rng.choice((eol, "\r\n", "\n", "")) + body
    if eol == "\n" and rng.random() < 0.5:
        text = text.replace("\r\n", "\n")
    charset = rng.choice(("utf-8", "latin-1"))
    return text.encode(charset, "replace")


def test_generated_odd_mails_read_the_same() -> None:
    rng = random.Random(18)
    taken = 0
    for _ in range(6000):
        raw = _mail(rng)
        taken += _same(raw)
        taken += _same(raw, 50)
    assert 500 < taken < 11_000  # both readings are exercised


@pytest.mark.parametrize(
    "raw",
    [
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\neA==\r\n",
        b"Content-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nx\r\n",
        b"Content-Type: text/plain; name=a.txt\r\n\r\nx\r\n",
        b"Content-Type: text/plain; charset*=utf-8''x\r\n\r\nx\r\n",
        b"Subject: x\r\nContent-Type: text/plain\r\n\tcharset=utf-8\r\n\r\nx\r\n",
        b"From a@b Sat Nov 22 15:00:00 2025\r\nSubject: x\r\n\r\nx\r\n",
        b"Subject: x\r\nno colon\r\n\r\nx\r\n",
        b"Subject: x\rContent-Type: text/plain\r\n\r\nx\r\n",
        b"Subject: no blank line, no body\r\n",
    ],
)
def test_what_only_the_parser_reads(raw: bytes) -> None:
    assert mime._plain(raw, MAX) is None


def _stdlib_view(raw: bytes) -> tuple[object, ...]:
    """The header values extract reports, read through the stdlib's Message API."""
    msg = mime._PARSER.parsebytes(raw)

    def header(name: str) -> str | None:
        value = msg.get(name)
        return None if value is None else decode_header_value(value)

    return (
        header("Subject") or "",
        header("Message-ID") or None,
        header("From") or "",
        header("Auto-Submitted"),
        header("Precedence"),
        len(msg.get_all("Received") or []),
        tuple((str(name), str(value)) for name, value in msg.items()),
    )


def test_extract_is_the_same_by_either_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(1802)
    raws = [path.read_bytes() for path in MAILS] + [_mail(rng) for _ in range(1500)]
    fast = [_outcome(mime.extract, raw) for raw in raws]
    for raw, mail in zip(raws, fast, strict=True):
        if isinstance(mail, MailText):
            seen = (
                mail.subject,
                mail.message_id,
                mail.from_header,
                mail.auto_submitted,
                mail.precedence,
                mail.received_count,
                mail.headers,
            )
            assert seen == _stdlib_view(raw), raw
    monkeypatch.setattr(mime, "_plain", lambda raw, max_chars: None)
    assert [_outcome(mime.extract, raw) for raw in raws] == fast
