"""The SMPP server's door: time and attempt limits, as the SMTP door has them.

A connection that never binds is closed after `bind_timeout` (SMPP 3.4's
session_init_timer); a bound client that stops answering (its NAT forgot the
connection) is asked with enquire_link after `enquire_link_interval` of silence and
dropped when it does not answer, so its place under the account's `max_binds` is free
for the client's next bind; a client that answers stays. Wrong passwords are counted per
address and per system_id across connections, answered later and later, and lock the
address out (no password is checked while it is locked); connections are limited per
address and in total. The clients are raw sockets (tests/peers/raw_smpp.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct
import time
from pathlib import Path

import pytest

from bridge.db.store import run_sync
from bridge.smpp_server.accounts import set_limits
from bridge.smpp_server.settings import SmppServerSettings
from tests.conftest import make_settings
from tests.helpers import our_faults, running_bridge
from tests.peers.raw_smpp import Client, pdu

BIND_TRANSMITTER = 0x02
BIND_TRANSCEIVER = 0x09
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E


def _bind_body(password: bytes = b"demo") -> bytes:
    return b"demo\0" + password + b"\0\0\x34\x00\x00\0"


async def _connect(host: str, port: int, *, answers: bool = True) -> Client:
    reader, writer = await asyncio.open_connection(host, port)
    client = Client(reader, writer, answers=answers)
    client.start()
    return client


async def _bind(host: str, port: int, password: bytes = b"demo", **kw: bool) -> tuple[Client, int]:
    client = await _connect(host, port, **kw)
    answer = await client.request(BIND_TRANSCEIVER, _bind_body(password))
    assert answer is not None, "no bind_resp"
    return client, answer[1]


async def test_a_connection_that_never_binds_is_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    door = SmppServerSettings(enabled=True, port=0, bind_timeout=1.0)
    async with running_bridge(make_settings(tmp_path, smpp_server=door)) as (_, ep):
        assert ep.smpp is not None
        quiet = await _connect(*ep.smpp)
        chatty = await _connect(*ep.smpp)  # enquire_link keeps no unbound connection open
        assert await chatty.request(0x15, b"") is not None  # answered while it lasts
        for seq in itertools.count(1000):  # ... and asked on until the server closes
            if chatty.ended.is_set():
                break
            chatty.send(pdu(0x15, seq))
            await asyncio.sleep(0.2)
            assert seq < 1015, "an unbound connection stayed open for 3 s"
        await asyncio.wait_for(quiet.ended.wait(), 3)
        bound, status = await _bind(*ep.smpp)  # a bind in time stays
        assert status == 0
        await asyncio.sleep(1.5)
        assert not bound.ended.is_set()
        await bound.close()
    assert any("no bind within 1 s" in r.getMessage() for r in caplog.records)
    assert not list(our_faults(caplog))


async def test_a_bind_that_went_silent_is_dropped_and_frees_its_place(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    door = SmppServerSettings(enabled=True, port=0, enquire_link_interval=1.0, response_timeout=1.0)
    async with running_bridge(make_settings(tmp_path, smpp_server=door)) as (bridge, ep):
        assert ep.smpp is not None and bridge.store is not None
        run_sync(bridge.store.engine, lambda c: set_limits(c, "demo", max_binds=1))
        gone, status = await _bind(*ep.smpp, answers=False)  # its network went away
        assert status == 0
        again, status = await _bind(*ep.smpp)
        assert status == ESME_RBINDFAIL  # the account's one bind is taken
        await again.close()
        await asyncio.wait_for(gone.ended.wait(), 5)
        live, status = await _bind(*ep.smpp)  # the client's next bind gets the place
        assert status == 0
        await asyncio.sleep(3)  # it answers enquire_link: it stays
        assert not live.ended.is_set()
        assert [s for s in live.seen if s[0] == 0x15], "no enquire_link after a silent second"
        await live.close()
        await gone.close()
    assert any("enquire_link" in r.getMessage() for r in caplog.records if "demo" in r.getMessage())
    assert not list(our_faults(caplog))


async def test_bind_guessing_is_slowed_and_locked_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    door = SmppServerSettings(enabled=True, port=0, bind_max_failures=3)
    async with running_bridge(make_settings(tmp_path, smpp_server=door)) as (_, ep):
        assert ep.smpp is not None
        answered_after: list[float] = []
        for guess in (b"wrong1", b"wrong2", b"wrong3"):
            started = time.monotonic()
            client, status = await _bind(*ep.smpp, password=guess)
            answered_after.append(time.monotonic() - started)
            assert status == ESME_RINVPASWD
            await client.close()
        assert answered_after[0] >= 0.4 and answered_after[1] >= 0.9, answered_after
        right, status = await _bind(*ep.smpp)  # locked: not even the right password
        assert status == ESME_RBINDFAIL
        await right.close()
        # another address is not locked out by this one's guesses
        reader, writer = await asyncio.open_connection(
            ep.smpp[0], ep.smpp[1], local_addr=("127.0.0.2", 0)
        )
        other = Client(reader, writer)
        other.start()
        answer = await other.request(BIND_TRANSCEIVER, _bind_body())
        assert answer is not None and answer[1] == 0
        await other.close()
    assert any("locked" in r.getMessage() for r in caplog.records)
    assert not list(our_faults(caplog))


async def test_a_bind_whose_failures_cannot_be_counted_now_is_refused_for_now(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The counts of wrong passwords out of reach (their lock held, or no room for a new
    client): the bind is refused without a password check, logged as "for now", not as
    a locked address; once they can be had the same bind succeeds."""
    caplog.set_level(logging.INFO)
    door = SmppServerSettings(enabled=True, port=0)
    async with running_bridge(make_settings(tmp_path, smpp_server=door)) as (bridge, ep):
        assert ep.smpp is not None and bridge.smpp_server is not None
        table = bridge.smpp_server._guard.table
        table.wait = 0.2
        assert table.lock.acquire()
        try:
            refused, status = await _bind(*ep.smpp)
        finally:
            table.lock.release()
        assert status == ESME_RBINDFAIL
        await refused.close()
        bound, status = await _bind(*ep.smpp)
        assert status == 0
        await bound.close()
    lines = [r.getMessage() for r in caplog.records if "SMPP bind of" in r.getMessage()]
    assert any("refused for now" in line for line in lines), lines
    assert not any("is locked" in line for line in lines), lines


async def test_connections_are_limited_per_address(tmp_path: Path) -> None:
    door = SmppServerSettings(enabled=True, port=0, max_connections_per_ip=2)
    async with running_bridge(make_settings(tmp_path, smpp_server=door)) as (_, ep):
        assert ep.smpp is not None
        first, second = await _connect(*ep.smpp), await _connect(*ep.smpp)
        third = await _connect(*ep.smpp)
        await asyncio.wait_for(third.ended.wait(), 3)  # closed at once
        assert not first.ended.is_set() and not second.ended.is_set()
        await first.close()
        await asyncio.sleep(0.2)
        client, status = await _bind(*ep.smpp)  # a place is free again
        assert status == 0
        await client.close()
        await second.close()


async def test_a_refused_bind_reaches_a_client_still_sending_and_the_close_is_orderly(
    tmp_path: Path,
) -> None:
    """A client sends on after its bind (enquire_links, before the answer: some do) and
    is refused: it reads the bind_resp with the reason, then the server's end of the
    stream, not a reset. Before, the server closed at once; the client's next PDUs met a
    closed socket, the kernel answered with a reset, and the client's next read failed
    with `connection reset` (a TCP that drops unread data on a reset lost the bind_resp)."""
    door = SmppServerSettings(enabled=True, port=0)
    async with running_bridge(make_settings(tmp_path, smpp_server=door)) as (_, ep):
        assert ep.smpp is not None
        reader, writer = await asyncio.open_connection(*ep.smpp)
        got = bytearray()

        async def collect() -> None:  # all the server sends, to its end (or a reset)
            while data := await reader.read(65536):
                got.extend(data)

        collecting = asyncio.create_task(collect())
        writer.write(pdu(BIND_TRANSCEIVER, 1, _bind_body(b"wrong")))
        loop = asyncio.get_running_loop()
        answered_at = None
        for seq in itertools.count(2):  # an enquire_link every 20 ms, on after the answer
            writer.write(pdu(0x15, seq))
            await writer.drain()
            await asyncio.sleep(0.02)
            if answered_at is None and _answer(bytes(got), 0x80000009) is not None:
                answered_at = loop.time()
            if answered_at is not None and loop.time() - answered_at > 0.3:
                break
            assert seq < 500, "no bind_resp"
        await asyncio.wait_for(collecting, 10)  # old code: ConnectionResetError
        assert _answer(bytes(got), 0x80000009) == ESME_RINVPASWD
        writer.close()


def _answer(stream: bytes, command_id: int) -> int | None:
    """The status of the first PDU of `command_id` in `stream`, or None."""
    at = 0
    while at + 16 <= len(stream):
        length, cid, status, _ = struct.unpack(">IIII", stream[at : at + 16])
        if cid == command_id:
            return int(status)
        at += length
    return None
