"""A client that ends its sending side (TCP half-close, shutdown(SHUT_WR)) while it waits
for our replies, as Exim does after the data's dot with QUIT pipelined behind it: every
command that arrived whole is answered before the session closes, so the mail queued is
the mail acknowledged (never queued and unanswered, then sent again by the client);
data cut short by the end is dropped unanswered; no error is logged either way."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.helpers import make_mail, our_faults, running_bridge
from tests.security.common import greeted, orders
from tests.smtp_probe import RawSmtp

GROUP = (
    b"MAIL FROM:<demo@example.com>\r\n"
    b"RCPT TO:<+491701234567@eu.rsms.net>\r\n"
    b"RCPT TO:<+4930123456@eu.rsms.net>\r\n"
    b"DATA\r\n"
)


def _half_close(client: RawSmtp) -> None:
    sock = client.writer.get_extra_info("socket")
    sock.shutdown(socket.SHUT_WR)


async def _rest(client: RawSmtp) -> list[str]:
    """Every reply until the server closes."""
    got = []
    while reply := await client.read_reply(10):
        got.append(reply)
    return got


@pytest.mark.parametrize("quit_", [True, False], ids=["dot-quit-eof", "dot-eof"])
async def test_the_mail_before_a_half_close_is_answered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, quit_: bool
) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await greeted(*ep.smtp)
        await c.send(GROUP)
        assert [(await c.read_reply())[:3] for _ in range(4)] == ["250", "250", "550", "354"]
        await c.send(make_mail() + b".\r\n" + (b"QUIT\r\n" if quit_ else b""))
        _half_close(c)  # at once, as Exim: the end may come before we read the data
        got = await _rest(c)
        await c.close()
        assert got[0].startswith("250 2.0.0 Ok: queued as "), got
        assert [g[:3] for g in got[1:]] == (["221"] if quit_ else []), got
    assert [r for r, _ in orders(tmp_path)] == ["+491701234567"]
    assert not list(our_faults(caplog))


async def test_data_cut_short_by_a_half_close_is_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await greeted(*ep.smtp)
        await c.send(GROUP)
        assert [(await c.read_reply())[:3] for _ in range(4)] == ["250", "250", "550", "354"]
        await c.send(make_mail())  # no final dot
        _half_close(c)
        assert await _rest(c) == []  # closed, nothing answered
        await c.close()
        await asyncio.sleep(0.2)
    assert orders(tmp_path) == []
    assert not list(our_faults(caplog))


async def test_commands_before_a_half_close_are_answered(tmp_path: Path) -> None:
    """Not only the data: a pipelined group (MAIL, RCPT) then the end at once."""
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        c = await greeted(*ep.smtp)
        await c.send(b"MAIL FROM:<demo@example.com>\r\nRCPT TO:<+491701234567@eu.rsms.net>\r\n")
        _half_close(c)
        got = await _rest(c)
        await c.close()
    assert [g[:9] for g in got] == ["250 2.1.0", "250 2.1.5"], got
