"""The SMTP session's timeout (`[smtp] timeout`, as Postfix's `smtpd_timeout`): `timeout`
seconds without a whole command or line of data end the session with 421; a session that
goes on sending is never cut, however long it lasts. The listener keeps one timer a
session, set again when it fires before the deadline (`DataInBlocks._reset_timeout`), so
these check both sides of the deadline across several of its periods."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.conftest import make_settings
from tests.helpers import running_bridge
from tests.security.common import greeted, with_smtp

TIMEOUT = 1.0


async def test_a_session_that_goes_on_outlives_its_timeout_and_times_out_once_silent(
    tmp_path: Path,
) -> None:
    async with running_bridge(with_smtp(make_settings(tmp_path), timeout=TIMEOUT)) as (_, ep):
        c = await greeted(*ep.smtp)
        started = time.monotonic()
        while time.monotonic() - started < 3.5 * TIMEOUT:  # across three deadlines
            assert (await c.command("NOOP")).startswith("250")
            await asyncio.sleep(0.4 * TIMEOUT)
        # a mail's data, each line 0.4 × timeout after the last: the lines keep it going
        assert (await c.command("MAIL FROM:<demo@example.com>")).startswith("250")
        assert (await c.command("RCPT TO:<+4917012345678@eu.rsms.net>")).startswith("250")
        assert (await c.command("DATA")).startswith("354")
        for line in (b"Subject: slow\r\n", b"\r\n", b"one\r\n", b"two\r\n", b"three\r\n"):
            c.writer.write(line)
            await c.writer.drain()
            await asyncio.sleep(0.4 * TIMEOUT)
        assert (await c.command(".")).startswith("250")
        last = time.monotonic()
        timed_out = await asyncio.wait_for(c.read_reply(), 10 * TIMEOUT)
        silent = time.monotonic() - last
        assert timed_out.startswith("421 4.4.2"), timed_out
        assert TIMEOUT * 0.9 <= silent <= TIMEOUT * 4, silent  # not early; late by load only
        c.writer.close()


async def test_a_silent_session_times_out_after_its_timeout(tmp_path: Path) -> None:
    async with running_bridge(with_smtp(make_settings(tmp_path), timeout=TIMEOUT)) as (_, ep):
        c = await greeted(*ep.smtp)
        last = time.monotonic()
        timed_out = await asyncio.wait_for(c.read_reply(), 10 * TIMEOUT)
        silent = time.monotonic() - last
        assert timed_out.startswith("421 4.4.2"), timed_out
        assert TIMEOUT * 0.9 <= silent <= TIMEOUT * 4, silent
        c.writer.close()
