"""A short, bounded fuzz of the SMTP dialogue and of MIME against a running bridge (hypothesis).

The bridge runs as `mailsms serve` (its own process, on SQLite and on PostgreSQL, the
sandbox SMSC). Each
example opens a connection and plays a drawn dialogue: greetings, MAIL/RCPT with valid,
odd and hostile addresses and DSN parameters, DATA with a drawn MIME structure (nested
multiparts, charsets real and bogus, transfer encodings, encoded words, raw bytes),
junk lines. Whatever it sends, every answer is a well-formed, bounded SMTP reply, never
an internal error (`451 4.3.0 … internal error`, aiosmtpd's `500 Error: (…)`); the end
of a mail's data is answered `250` or `5xx`, never `4xx` (the same mail would get it at
every retry); the server stays up; and at the end its log holds no traceback and stayed
small.

Deterministic (`derandomize`): the same examples on every run, so a failure reproduces.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import fresh_postgres
from tests.peers.net import free_port
from tests.reliability.processes import (
    HOST,
    Proc,
    bridge_config,
    start_bridge,
    wait_smtp_ready,
)

EXAMPLES = 300
REPLY_LINE = re.compile(rb"[2-5][0-9][0-9][ -][^\r\n]*\r\n")
OUR_FAULT = ("internal error", "Error: (", "Traceback")
LOG_LIMIT = 2_000_000  # bytes of log for the whole fuzz run


@dataclass
class Bridge:
    proc: Proc
    port: int


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def bridge(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bridge]:
    workdir = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    database = None
    if request.param == "postgres":
        database = fresh_postgres(request.getfixturevalue("durable_postgres_server"))
    config = bridge_config(workdir, port, f"sandbox:{free_port()}", database_url=database)
    proc = start_bridge(config, workdir / "bridge.log")
    try:
        wait_smtp_ready(proc, port)
        yield Bridge(proc, port)
        log = proc.log_text()
        assert proc.alive(), log[-3000:]
        assert "Traceback" not in log, log[log.index("Traceback") - 500 :][:4000]
        assert len(log.encode()) < LOG_LIMIT
    finally:
        proc.stop()


class Session:
    """A blocking SMTP connection that keeps every reply it reads."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.buffer = b""
        self.replies: list[bytes] = []

    def reply(self) -> bytes | None:
        """One whole reply, or None when the server closed the connection."""
        lines = b""
        while True:
            end = self.buffer.find(b"\r\n")
            while end < 0:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return None
                self.buffer += chunk
                end = self.buffer.find(b"\r\n")
                assert len(self.buffer) < 64_000, "an endless reply line"
            line, self.buffer = self.buffer[: end + 2], self.buffer[end + 2 :]
            lines += line
            if line[3:4] != b"-":
                self.replies.append(lines)
                return lines

    def send(self, data: bytes) -> bytes | None:
        try:
            self.sock.sendall(data)
        except OSError:
            return None
        return self.reply()

    def close(self) -> None:
        self.sock.close()


def check(reply: bytes) -> None:
    """A well-formed, bounded reply that does not tell of a fault of ours."""
    lines = REPLY_LINE.findall(reply)
    assert b"".join(lines) == reply, reply
    assert all(len(line) <= 512 for line in lines), reply
    assert len(lines) <= 20, reply
    code = reply[:3]
    assert len({line[:3] for line in lines}) == 1, reply
    text = reply.decode("utf-8", "replace")
    assert not any(fault in text for fault in OUR_FAULT), text
    if code[:1] in b"45" and code not in (b"500", b"501", b"502", b"503", b"504"):
        assert re.match(r"\d{3}[ -][245]\.\d{1,3}\.\d{1,3} ", text), text  # enhanced code


# --- what the fuzz sends ----------------------------------------------------------------

_printable = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)
_anything = st.text(max_size=60)
_addresses = st.one_of(
    st.sampled_from(
        [
            "demo@example.com",
            "+491701234567@eu.rsms.net",
            "SMS=+491701234567@eu.rsms.net",
            "preview+491701234567@eu.rsms.net",
            '"+49 170 1234567"@eu.rsms.net',
            "01701234567@eu.rsms.net",
            "victim@gmail.com",
            "x%ext@eu.rsms.net",
            "@eu.rsms.net:x@ext.example",
            "+491701234567@eu.rsms.net.evil",
            "+٤٩١٧٠١٢٣٤٥٦٧@eu.rsms.net",
            "",
            "a" * 300 + "@eu.rsms.net",
        ]
    ),
    _printable.map(lambda s: f"{s}@eu.rsms.net"),
    _anything,
)
_params = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "SIZE=100",
                "SIZE=99999999999999999999",
                "BODY=8BITMIME",
                "BODY=BINARYMIME",
                "RET=FULL",
                "RET=HDRS",
                "RET=XXX",
                "NOTIFY=SUCCESS,FAILURE",
                "NOTIFY=NEVER,SUCCESS",
                "ORCPT=rfc822;+491701234567@eu.rsms.net",
                "ORCPT=rfc822;a+0D+0Ab",
                "ENVID=QQ314159",
                "ENVID=a+0D+0ABcc:+20x",
                "SMTPUTF8",
                "AUTH=<>",
            ]
        ),
        _printable.map(lambda s: f"ENVID={s}"),
        _printable.map(lambda s: f"ORCPT=rfc822;{s}"),
        _printable,
    ),
    max_size=3,
).map(lambda ps: "".join(" " + p for p in ps))
_verbs = st.sampled_from(["EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "VRFY", "HELP"])
_command = st.one_of(
    st.just("EHLO fuzz.example"),
    st.just("HELO fuzz.example"),
    st.tuples(_addresses, _params).map(lambda a: f"MAIL FROM:<{a[0]}>{a[1]}"),
    st.tuples(_addresses, _params).map(lambda a: f"RCPT TO:<{a[0]}>{a[1]}"),
    st.just("MAIL FROM:<demo@example.com>"),
    st.just("RCPT TO:<+491701234567@eu.rsms.net>"),
    st.just("DATA"),
    st.sampled_from(["RSET", "NOOP", "HELP", "VRFY demo", "EXPN staff", "AUTH PLAIN AAAA"]),
    st.sampled_from(  # bytes that are no UTF-8 (sent through surrogateescape)
        [
            "MAIL FROM:<\udcff@x>",
            "RCPT TO:<+49\udcfe@eu.rsms.net>",
            "MAIL FROM:<demo@example.com> ENVID=\udcff\udcfe",
            "RCPT TO:<+491701234567@eu.rsms.net> ORCPT=rfc822;\udce9",
            "VRFY a@",
        ]
    ),
    st.tuples(_verbs, _anything).map(lambda v: f"{v[0]} {v[1]}"),
    _anything,
)

_charsets = st.sampled_from(
    [
        "utf-8",
        "us-ascii",
        "iso-8859-1",
        "windows-1252",
        "utf-16",
        "utf-7",
        "x-unknown",
        "",
        "üñí",
        "idna",
        "base64",
    ]
)
_encodings = st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "binary", "x-uue", ""])
_text = st.text(max_size=200)


@st.composite
def _word(draw: st.DrawFn) -> str:
    """An RFC 2047 encoded word (often broken)."""
    charset = draw(_charsets)
    kind = draw(st.sampled_from(["B", "Q", "X"]))
    payload = draw(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30))
    return f"=?{charset}?{kind}?{payload}?="


@st.composite
def _part(draw: st.DrawFn, depth: int) -> bytes:
    if depth < 3 and draw(st.booleans()):
        boundary = draw(st.sampled_from(["b1", "b2", "=_x", "", "a" * 80]))
        subtype = draw(st.sampled_from(["mixed", "alternative", "related", "report", "x"]))
        children = draw(st.lists(_part(depth + 1), max_size=3))
        head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()
        body = b"".join(b"--" + boundary.encode() + b"\r\n" + c + b"\r\n" for c in children)
        closing = draw(st.sampled_from([b"--" + boundary.encode() + b"--\r\n", b""]))
        return head + draw(st.binary(max_size=20)) + body + closing
    ctype = draw(st.sampled_from(["text/plain", "text/html", "application/pdf", "message/rfc822"]))
    charset = draw(_charsets)
    head = (
        f"Content-Type: {ctype}; charset={charset}\r\n"
        f"Content-Transfer-Encoding: {draw(_encodings)}\r\n\r\n"
    ).encode()
    body = draw(st.one_of(_text.map(lambda t: t.encode("utf-8")), st.binary(max_size=200)))
    return head + body


@st.composite
def _mime(draw: st.DrawFn) -> bytes:
    subject = draw(st.one_of(_text, _word(), st.lists(_word(), max_size=4).map(" ".join)))
    headers = [
        b"From: <demo@example.com>",
        b"To: <+491701234567@eu.rsms.net>",
        b"Subject: " + subject.encode("utf-8"),
        b"Message-ID: <" + draw(_printable).encode() + b"@fuzz.example>",
    ]
    extra = draw(
        st.lists(
            st.sampled_from(
                [
                    b"X-SMS-Validity: 86400",
                    b"X-SMS-Validity: -5",
                    b"X-SMS-Validity: 99999999999999999999",
                    b"X-SMS-Send-At: yesterday",
                    b"X-SMS-Send-At: 9999-12-31T23:59:59-12:00",
                    b"Subject: [validity:99999999999999999999] [at:0001-01-01T00:00+14:00] x",
                    b"X-SMS-Encoding: ucs2",
                    b"Auto-Submitted: auto-replied",
                    b"Precedence: bulk",
                    b"MIME-Version: 1.0",
                    b"Received: from x by y",
                ]
            ),
            max_size=3,
        )
    )
    raw = b"\r\n".join(headers + extra) + b"\r\n" + draw(_part(0))
    # SMTP framing: CRLF lines, dot-stuffed (bare CR or LF are left in: a fault of the mail)
    lines = raw.split(b"\r\n")
    return b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)


# --- the properties ---------------------------------------------------------------------

_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _alive(port: int) -> None:
    session = Session(port)
    try:
        banner = session.reply()
        assert banner is not None and banner.startswith(b"220"), banner
    finally:
        session.close()


@_settings
@given(dialogue=st.lists(st.tuples(_command, _mime()), min_size=1, max_size=10))
def test_smtp_dialogue_fuzz(bridge: Bridge, dialogue: list[tuple[str, bytes]]) -> None:
    session = Session(bridge.port)
    try:
        banner = session.reply()
        assert banner is not None
        check(banner)
        for command, body in dialogue:
            line = command.replace("\r", " ").replace("\n", " ").encode("utf-8", "surrogateescape")
            reply = session.send(line + b"\r\n")
            if reply is None:
                break  # the server may close (421, after too many bad commands)
            check(reply)
            if reply.startswith(b"354"):
                reply = session.send(body + b".\r\n")
                if reply is None:
                    break
                check(reply)
            if reply[:3] in (b"221", b"421"):
                break
    finally:
        session.close()
    _alive(bridge.port)


@_settings
@given(body=_mime(), rcpts=st.integers(min_value=1, max_value=3))
def test_mime_fuzz(bridge: Bridge, body: bytes, rcpts: int) -> None:
    session = Session(bridge.port)
    try:
        assert session.reply() is not None
        for line in [b"EHLO fuzz.example", b"MAIL FROM:<demo@example.com>"] + [
            f"RCPT TO:<+4917012345{n:02d}@eu.rsms.net>".encode() for n in range(rcpts)
        ]:
            reply = session.send(line + b"\r\n")
            assert reply is not None and reply.startswith(b"250"), (line, reply)
        reply = session.send(b"DATA\r\n")
        assert reply is not None and reply.startswith(b"354"), reply
        reply = session.send(body + b".\r\n")
        assert reply is not None, "no answer to the end of data"
        check(reply)
        # taken, or refused for good: a 4xx says "send it again", and the same mail would
        # get it again at every retry (no fault of ours is staged here)
        assert reply[:1] in b"25", reply
    finally:
        session.close()


def test_the_fuzzed_bridge_still_accepts_a_mail(bridge: Bridge, tmp_path: Path) -> None:
    session = Session(bridge.port)
    try:
        session.reply()
        for line in (b"EHLO ok.example", b"MAIL FROM:<demo@example.com>"):
            assert (session.send(line + b"\r\n") or b"").startswith(b"250")
        assert (session.send(b"RCPT TO:<+491701234599@eu.rsms.net>\r\n") or b"").startswith(b"250")
        assert (session.send(b"DATA\r\n") or b"").startswith(b"354")
        reply = session.send(b"Subject: still here\r\n\r\nAll good.\r\n.\r\n") or b""
        assert reply.startswith(b"250 2.0.0"), reply
    finally:
        session.close()
