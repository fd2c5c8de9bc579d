"""Bad input from clients: a 5xx with a reason and at most one log line, never a traceback, never
a 4xx for a fault of the mail (log flooding, permanent faults, S16 probes, T5)."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest
import trustme

from tests.conftest import make_settings
from tests.helpers import running_bridge
from tests.security.common import client_context, greeted, orders, tls_settings
from tests.smtp_probe import RawSmtp


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


async def test_1000_bad_mail_commands_write_no_traceback_and_few_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with running_bridge(make_settings(tmp_path)) as (_, ep):
            caplog.clear()
            answers = []
            for _ in range(10):  # a session ends after 100 commands without a mail
                c = await greeted(*ep.smtp)
                for _ in range(99):
                    await c.send(b"MAIL FROM:<\xff@x>\r\n")
                    answers.append(await c.read_reply())
                await c.close()
    assert len(answers) == 990
    assert all(a.startswith("501 5.5.2") and "not UTF-8" in a for a in answers), answers[:3]
    assert _tracebacks(caplog) == []
    about_it = [r for r in caplog.records if "not UTF-8" in r.getMessage()]
    assert 1 <= len(about_it) <= 10  # repeated events are rate-limited
    assert len(caplog.records) < 150, len(caplog.records)  # was 4 lines and a traceback each


@pytest.mark.parametrize(
    ("commands", "status"),
    [
        ([b"MAIL FROM:<\xff@x>"], "501 5.5.2"),
        ([b"MAIL FROM:<demo@example.com> ENVID=\xfe\xff"], "501 5.5.2"),
        ([b"MAIL FROM:<demo@example.com>", b"RCPT TO:<\xff@eu.rsms.net>"], "501 5.5.2"),
        (
            [b"MAIL FROM:<demo@example.com>", b"RCPT TO:<+491701234567@eu.rsms.net> ORCPT=\xff"],
            "501 5.5.2",
        ),
        ([b"MAIL FROM:<de\x01mo@example.com>"], "501 5.5.2"),
        ([b"HELO \xff\xfe"], "501 5.5.2"),
        ([b"VRFY a@"], "502"),
        ([b"VRFY <@>"], "502"),
        ([b"MAIL FROM:<a@>"], "553"),
        ([b"MAIL FROM:<demo@example.com)<eve@evil.example>>"], "5"),  # T5: never authorises
    ],
)
async def test_malformed_commands_get_5xx_and_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, commands: list[bytes], status: str
) -> None:
    with caplog.at_level(logging.INFO):
        async with running_bridge(make_settings(tmp_path)) as (_, ep):
            c = await greeted(*ep.smtp)
            for line in commands:
                await c.send(line + b"\r\n")
                answer = await c.read_reply()
            assert (await c.command("NOOP")).startswith("250")  # the session goes on
            await c.close()
    assert answer.startswith(status), answer
    assert _tracebacks(caplog) == []


async def test_failed_tls_handshakes_are_one_rate_limited_line_each(
    tmp_path: Path, ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with running_bridge(tls_settings(tmp_path, ca)) as (_, ep):
            for _ in range(20):
                c = await greeted(*ep.smtp)
                assert (await c.command("STARTTLS")).startswith("220")
                await c.send(b"this is not a TLS client hello\r\n\r\n")
                assert await c.read_reply() == ""  # closed
                await c.close()
            good = await greeted(*ep.smtp)  # the listener is fine
            await good.command("STARTTLS")
            await good.starttls(client_context(ca))
            assert (await good.command("EHLO probe")).startswith("250")
            await good.close()
    assert _tracebacks(caplog) == []
    failed = [r for r in caplog.records if "TLS handshake" in r.getMessage()]
    assert 1 <= len(failed) <= 10 and all(r.levelno == logging.INFO for r in failed)


def _mail(headers: bytes, body: bytes = b"hello\r\n") -> bytes:
    return b"From: demo@example.com\r\nTo: +491701234567@eu.rsms.net\r\n" + headers + b"\r\n" + body


PERMANENT = {
    "idna charset with 8-bit text": _mail(
        b"Subject: x\r\nContent-Type: text/plain; charset=idna\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n",
        b"caf\xc3\xa9 \xff\xfe\r\n",
    ),
    "huge X-SMS-Validity": _mail(b"Subject: x\r\nX-SMS-Validity: 99999999999999999999\r\n"),
    "X-SMS-Send-At at the end of time": _mail(b"Subject: x\r\nX-SMS-Send-At: 9999-12-31\r\n"),
    "X-SMS-Send-At at the very end of time": _mail(
        b"Subject: x\r\nX-SMS-Send-At: 9999-12-31T23:59:59-12:00\r\n"
    ),
    "huge validity token": _mail(b"Subject: [validity:99999999999999999999] x\r\n"),
    "send-at token at the end of time": _mail(b"Subject: [at:9999-12-31] x\r\n"),
    "year 1 send-at token": _mail(b"Subject: [at:0001-01-01T00:00+14:00] x\r\n"),
}


@pytest.mark.parametrize("raw", PERMANENT.values(), ids=PERMANENT.keys())
async def test_permanent_faults_of_the_mail_get_5xx(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, raw: bytes
) -> None:
    with caplog.at_level(logging.INFO):
        async with running_bridge(make_settings(tmp_path)) as (_, ep):
            c = await greeted(*ep.smtp)
            await c.command("MAIL FROM:<demo@example.com>")
            await c.command("RCPT TO:<+491701234567@eu.rsms.net>")
            await c.command("DATA")
            await c.send(raw + b".\r\n")
            answer = await c.read_reply()
            await c.close()
    code, status, text = answer.split(" ", 2)
    assert code[0] == "5" and status[0] == "5", answer  # never 451: the MTA would retry
    assert len(text) > 40 and ";" in text, answer  # a sentence saying what to do
    assert orders(tmp_path) == []
    assert _tracebacks(caplog) == []


async def test_unknown_charset_is_read_as_well_as_possible(tmp_path: Path) -> None:
    raw = _mail(b"Subject: x\r\nContent-Type: text/plain; charset=x-no-such\r\n", b"hello\r\n")
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await greeted(*ep.smtp)
        await c.command("MAIL FROM:<demo@example.com>")
        await c.command("RCPT TO:<+491701234567@eu.rsms.net>")
        await c.command("DATA")
        await c.send(raw + b".\r\n")
        answer = await c.read_reply()
        await c.close()
    assert answer.startswith("250 2.0.0"), answer


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_old_tls_client_is_one_line_and_no_traceback(
    tmp_path: Path, ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with running_bridge(tls_settings(tmp_path, ca)) as (_, ep):
            c = await RawSmtp.connect(*ep.smtp)
            await c.read_reply()
            await c.command("EHLO old")
            await c.command("STARTTLS")
            old = client_context(ca)
            old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            old.maximum_version = ssl.TLSVersion.TLSv1_1
            old.set_ciphers("ALL:@SECLEVEL=0")
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await c.starttls(old)
            await c.close()
    assert _tracebacks(caplog) == []
