"""A multi-line reply leaves the bridge in one write: EHLO's lines reach the client in one
TCP segment, not one per line (the kernel's own count, TCP_INFO's tcpi_segs_in, on the
client's socket), with and without STARTTLS on offer; the reply's text is unchanged and a
session goes on as before."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

import pytest
import trustme

from bridge.settings import Settings
from tests.conftest import make_settings
from tests.helpers import running_bridge
from tests.security.common import tls_settings
from tests.smtp_probe import RawSmtp

SEGS_IN = 140  # struct tcp_info: tcpi_segs_in (Linux 4.2 and later)


def _segments_in(client: RawSmtp) -> int:
    sock = client.writer.get_extra_info("socket")
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("I", info, SEGS_IN)[0])


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "starttls-offered"])
async def test_ehlos_lines_arrive_in_one_segment(tmp_path: Path, tls: bool) -> None:
    settings: Settings = tls_settings(tmp_path, trustme.CA()) if tls else make_settings(tmp_path)
    async with running_bridge(settings) as (_, ep):
        client = await RawSmtp.connect(*ep.smtp)
        try:
            assert (await client.read_reply()).startswith("220 ")
            await asyncio.sleep(0.05)  # the greeting's segment and any ACK counted
            before = _segments_in(client)
            ehlo = await client.command("EHLO client.example")
            await asyncio.sleep(0.05)  # a delayed ACK of ours, if any, has come back
            lines = ehlo.splitlines()
            assert len(lines) >= 4 and all(line[3:4] == "-" for line in lines[:-1])
            assert lines[-1].startswith("250 ")
            assert ("STARTTLS" in ehlo) is tls
            # one segment with the reply (a pure ACK of the command at most besides)
            assert _segments_in(client) - before <= 2, ehlo
            reply = await client.command("MAIL FROM:<demo@example.com>")
            assert reply.startswith("250 "), reply  # plaintext allowed from 127.0.0.1
            assert (await client.command("QUIT")).startswith("221 ")
        finally:
            await client.close()
