"""Faults on the DATA path: ours are `451 4.3.0` (the client's MTA retries) with the traceback
in the log only; the mail's are `554 5.6.0` with a sentence saying what to change. No reply
names an exception class or shows a traceback.

A real SMTP client (aiosmtplib) talks to the bridge's listener on 127.0.0.1; a fault of ours
is staged by replacing the handler's parse function (`bridge.intake.handler._extract`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from bridge.intake import handler
from bridge.settings import Settings
from tests.conftest import make_settings
from tests.helpers import running_bridge
from tests.security.common import orders, with_smtp

SENDER = "demo@example.com"
RCPT = "+491701234567@eu.rsms.net"
MAIL = b"From: demo@example.com\r\nTo: +491701234567@eu.rsms.net\r\nSubject: x\r\n\r\nhello\r\n"
# the stdlib's `email.utils.decode_params` sorts `filename*=` with `filename*0=` into a
# TypeError (Python 3.11): a crash of the parser on the mail's bytes, at every retry
RFC2231_CRASH = (
    b"From: demo@example.com\r\nTo: +491701234567@eu.rsms.net\r\nSubject: x\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: text/plain\r\n"
    b"Content-Disposition: inline; filename*=a; filename*0=b\r\n\r\nhi\r\n--b--\r\n"
)
# what a reply must never show: an exception's class, a traceback, a source file
INTERNAL = re.compile(r"Error\b|Exception\b|Interrupt\b|Traceback|File \"|\.py\b|futures")

OURS = {
    "MemoryError under load": MemoryError(),
    "executor shut down": RuntimeError("cannot schedule new futures after shutdown"),
    "disk full": OSError(28, "No space left on device"),
    "KeyError bug": KeyError("sender_id"),
    "AttributeError bug": AttributeError("'NoneType' object has no attribute 'subject'"),
    "TypeError bug": TypeError("unsupported operand type(s) for +: 'int' and 'str'"),
}
THE_MAILS = {
    "undecodable text": UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    "value out of range": ValueError("year 10000 is out of range"),
    "number too big": OverflowError("date value out of range"),
    "unknown charset": LookupError("unknown encoding: x-no-such"),
    "nested too deeply": RecursionError("maximum recursion depth exceeded"),
}


def _failing_once(exc: BaseException) -> Any:
    """A stand-in for the handler's parse function: raises `exc` once, then parses."""
    real = handler._extract
    calls = []

    def boom(raw: bytes) -> Any:
        calls.append(raw)
        if len(calls) == 1:
            raise exc
        return real(raw)

    return boom


async def _send(settings: Settings, *mails: bytes) -> list[tuple[int, str]]:
    """(code, text after the code) of each mail's end of data, in one SMTP session."""
    answers = []
    async with running_bridge(settings) as (_, ep):
        client = aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1], start_tls=False)
        async with client:
            for raw in mails:
                try:
                    _, message = await client.sendmail(SENDER, [RCPT], raw)
                    answers.append((250, message))
                except aiosmtplib.SMTPResponseException as exc:
                    answers.append((exc.code, exc.message))
    return answers


def _assert_no_internals(text: str) -> None:
    assert INTERNAL.search(text) is None, text


@pytest.mark.parametrize("in_thread", [False, True], ids=["in the loop", "in the parse thread"])
@pytest.mark.parametrize("fault", OURS.values(), ids=OURS.keys())
async def test_a_fault_of_ours_is_451_and_a_traceback_in_the_log(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    fault: Exception,
    in_thread: bool,
) -> None:
    settings = make_settings(tmp_path)
    if in_thread:  # `asyncio.to_thread`: the fault comes back from the worker thread
        settings = with_smtp(settings, parse_in_thread_above=0)
    monkeypatch.setattr(handler, "_extract", _failing_once(fault))
    with caplog.at_level(logging.INFO):
        (code, text), after = await _send(settings, MAIL, MAIL)
    assert code == 451 and text.startswith("4.3.0 "), (code, text)
    assert "retry later" in text, text
    _assert_no_internals(text)
    assert after[0] == 250, after  # the transaction was reset; the same session goes on
    assert len(orders(tmp_path)) == 1  # only the second mail's
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[1] is fault]
    assert len(logged) == 1, [r.getMessage() for r in caplog.records]
    record = logged[0]
    assert record.levelno == logging.ERROR
    assert re.match(
        r"[0-9A-Z]+: from=<demo@example\.com> not accepted, internal error", record.getMessage()
    )
    assert "in boom" in logging.Formatter().formatException(record.exc_info)  # type: ignore[arg-type]


async def test_a_fault_of_ours_at_the_commit_is_451(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object) -> str:
        raise AttributeError("'NoneType' object has no attribute 'execute'")

    monkeypatch.setattr(handler, "accept", broken)
    with caplog.at_level(logging.INFO):
        [(code, text)] = await _send(make_settings(tmp_path), MAIL)
    assert code == 451 and text.startswith("4.3.0 "), (code, text)
    _assert_no_internals(text)
    assert orders(tmp_path) == []
    assert any(r.exc_info and "internal error" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("in_thread", [False, True], ids=["in the loop", "in the parse thread"])
async def test_a_mail_that_crashes_the_mime_parser_is_554(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, in_thread: bool
) -> None:
    settings = make_settings(tmp_path)
    if in_thread:
        settings = with_smtp(settings, parse_in_thread_above=0)
    with caplog.at_level(logging.INFO):
        [(code, text)] = await _send(settings, RFC2231_CRASH)
    assert code == 554 and text.startswith("5.6.0 "), (code, text)  # a 4xx: retried for days
    assert "MIME headers cannot be parsed" in text and "; send plain text" in text, text
    _assert_no_internals(text)
    assert orders(tmp_path) == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # not a fault of ours


@pytest.mark.parametrize("fault", THE_MAILS.values(), ids=THE_MAILS.keys())
async def test_a_fault_of_the_mails_values_is_554_with_a_sentence(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    fault: Exception,
) -> None:
    monkeypatch.setattr(handler, "_extract", _failing_once(fault))
    with caplog.at_level(logging.INFO):
        [(code, text)] = await _send(make_settings(tmp_path), MAIL)
    assert code == 554 and text.startswith("5.6.0 "), (code, text)
    assert len(text) > 40 and "; send plain text" in text, text  # what to change
    _assert_no_internals(text)
    assert orders(tmp_path) == []
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
