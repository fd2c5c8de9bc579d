"""A session the listener ends (a 421, a 554 out of sync) ends with an orderly close the
client can read to the end: our last reply, then FIN, what the client still sends read
and dropped, the connection closed when the client closes (or after `LINGER` seconds).
Closed at once with the client's input unread, the connection was reset (RST): a client
still sending got `connection reset` on its next read or write, and a TCP that drops
unread data on a reset (Windows') lost the reply that said why."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bridge.app import Bridge
from bridge.intake.server import LINGER
from tests.conftest import make_settings
from tests.helpers import running_bridge, wait_for
from tests.security.common import greeted, with_smtp


async def _rest(client_reader: asyncio.StreamReader) -> bytes:
    """What the server sends until its end: b'' after an orderly close (a reset raises)."""
    return await asyncio.wait_for(client_reader.read(), 10)


async def test_a_client_out_of_sync_with_much_unread_reads_the_reply_and_an_orderly_end(
    tmp_path: Path,
) -> None:
    """300 kB of commands sent at once, unread when the 554 goes out."""
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await greeted(*ep.smtp)
        c.writer.write(b"NOOP\r\n" * 50_000)
        refused = await c.read_reply()
        assert refused.startswith("554 5.5.0"), refused
        assert await _rest(c.reader) == b""  # old code: ConnectionResetError
        c.writer.close()


async def test_a_trickling_client_gets_the_421_and_an_orderly_end_and_may_go_on_sending(
    tmp_path: Path,
) -> None:
    """The client never completes a command and goes on sending after the 421 (it has
    not read it yet): its writes are read and dropped, it reads the 421 and the end."""
    settings = with_smtp(make_settings(tmp_path), timeout=1)
    async with running_bridge(settings) as (_, ep):
        c = await greeted(*ep.smtp)
        started = time.monotonic()
        while time.monotonic() - started < 1.5:  # across the timeout
            c.writer.write(b"X" * 1000)  # one line that never ends (within the limit: no 500)
            await c.writer.drain()
            await asyncio.sleep(0.05)
        timed_out = await c.read_reply()
        assert timed_out.startswith("421 4.4.2"), timed_out
        assert await _rest(c.reader) == b""
        c.writer.close()


def _open(bridge: Bridge) -> int:
    """The listener's open connections."""
    assert bridge._shared is not None
    return bridge._shared.limiter.open_total


async def test_a_client_that_stays_is_closed_after_the_linger_time_one_that_closes_at_once(
    tmp_path: Path,
) -> None:
    """The session's slot is not held by a client that reads the end and stays, nor
    for the linger time by one that closes when it has read it."""
    settings = with_smtp(make_settings(tmp_path), idle_command_limit=2)
    async with running_bridge(settings) as (bridge, ep):
        stays = await greeted(*ep.smtp)  # EHLO: 1 command without a mail
        assert (await stays.command("NOOP")).startswith("250")
        assert (await stays.command("NOOP")).startswith("421 4.7.0")
        assert await _rest(stays.reader) == b""
        stays.writer.write(b"NOOP\r\n")  # read and dropped: no reply, no reset
        await stays.writer.drain()
        await asyncio.sleep(LINGER / 2)
        assert _open(bridge) == 1  # lingering
        await wait_for(lambda: _open(bridge) == 0, within=LINGER)
        stays.writer.close()

        closes = await greeted(*ep.smtp)
        assert (await closes.command("NOOP")).startswith("250")
        assert (await closes.command("NOOP")).startswith("421 4.7.0")
        assert await _rest(closes.reader) == b""
        closes.writer.close()
        await wait_for(lambda: _open(bridge) == 0, within=LINGER / 2)  # not after LINGER
