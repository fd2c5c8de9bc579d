"""A send the claim's end cuts takes no token of the bind's or the SMSC's rate; a long
SMS takes its parts' tokens all together or none."""

from __future__ import annotations

import asyncio
import time

import pytest

from bridge.smpp.esme import NotBound
from bridge.smpp.pdu import EnquireLink, Pdu
from bridge.smpp.session import NoTimeLeft, SmppSession
from bridge.smpp.stats import BindStats
from bridge.smpp.throttle import TokenBucket
from bridge.transports.smpp import SmppConfig
from bridge.transports.smpp_bind import SmppBind


async def _no_requests(pdu: Pdu) -> Pdu | None:
    raise AssertionError("no request is handled here")


def test_wait_takes_no_token() -> None:
    bucket = TokenBucket(2.0)
    assert bucket.wait(10.0) == 0.0
    assert bucket.reserve(10.0) == 0.0
    assert bucket.wait(10.0) == pytest.approx(0.5)
    assert bucket.wait(10.0) == pytest.approx(0.5)  # asking again takes nothing either
    assert bucket.reserve(10.0) == pytest.approx(0.5)


async def test_a_send_past_its_send_by_time_leaves_the_rates_untouched() -> None:
    """The token would come after the send-by time: NoTimeLeft, and the next send waits
    for the token it would have waited for anyway, not for one more (each cut send used
    to reserve a token of the bind's and the SMSC's bucket that no SMS used)."""
    config = SmppConfig(name="s", host="127.0.0.1", port=1, system_id="b", rate=1.0, smsc_rate=1.0)
    smsc = TokenBucket(config.smsc_rate)
    bind = SmppBind(config, "s#1", _no_requests, BindStats(), smsc)
    now = asyncio.get_running_loop().time()
    bind.bucket.reserve(now)
    smsc.reserve(now)  # the next token of each is a second away
    for _ in range(3):
        with pytest.raises(NoTimeLeft):
            await bind.send(EnquireLink(0), send_by=now + 0.2)
    later = asyncio.get_running_loop().time()
    assert bind.bucket.wait(later) <= 1.0
    assert smsc.wait(later) <= 1.0


def _bind(rate: float, smsc_rate: float) -> tuple[SmppBind, TokenBucket]:
    config = SmppConfig(
        name="s", host="127.0.0.1", port=1, system_id="b", rate=rate, smsc_rate=smsc_rate
    )
    smsc = TokenBucket(config.smsc_rate)
    return SmppBind(config, "s#1", _no_requests, BindStats(), smsc), smsc


async def test_a_long_sms_takes_its_parts_tokens_together() -> None:
    """Three parts at 2/s on the bind and 1/s on the SMSC: each part's token a second
    after the one before (the slower bucket), taken from both at once."""
    bind, smsc = _bind(2.0, 1.0)
    now = asyncio.get_running_loop().time()
    times = bind.reserve(3, send_by=now + 10)
    assert [t - times[0] for t in times] == pytest.approx([0.0, 1.0, 2.0], abs=0.01)
    assert times[0] - now == pytest.approx(0.0, abs=0.05)
    later = asyncio.get_running_loop().time()
    assert smsc.wait(later) == pytest.approx(3.0 - (later - now), abs=0.05)  # all three taken


async def test_parts_whose_last_token_comes_past_the_send_by_time_take_none() -> None:
    """The third part's token would come after the send-by time: NoTimeLeft before any
    part went, and no token taken, of the bind's or the SMSC's. Before, the parts took
    their tokens one by one: the first went, the third found no time, and the order,
    sent again later from its first part, showed the phone that part twice."""
    bind, smsc = _bind(1.0, 1.0)
    now = asyncio.get_running_loop().time()
    with pytest.raises(NoTimeLeft, match=r"the last of 3 parts could go in 2\.0 s"):
        bind.reserve(3, send_by=now + 1.5)
    assert bind.bucket.wait(now) == 0.0 and smsc.wait(now) == 0.0
    assert len(bind.reserve(2, send_by=now + 1.5)) == 2  # two fit


async def test_a_part_uses_its_reserved_token_and_takes_no_other() -> None:
    """`send(at=…)` waits for the token `reserve` took for it, not for one more."""
    bind, smsc = _bind(4.0, 0.0)
    loop = asyncio.get_running_loop()
    first, second = bind.reserve(2)
    marks = bind.bucket.taken_at(), smsc.taken_at()
    await _unbound_send(bind, at=first)
    started = loop.time()
    await _unbound_send(bind, at=second)  # its token is 0.25 s after the first's
    assert second - 0.05 <= loop.time() < second + 0.2, (started, second)
    assert (bind.bucket.taken_at(), smsc.taken_at()) == marks  # no token taken by either


async def _unbound_send(bind: SmppBind, at: float) -> None:
    """A send that gets as far as the session (none here: NotBound)."""
    with pytest.raises(NotBound):
        await bind.send(EnquireLink(0), send_by=at + 5, at=at)


async def test_a_request_held_up_past_its_send_by_time_is_not_written() -> None:
    """A frozen process (a paused VM, SIGSTOP) wakes with a window slot freed and its
    send-by time passed in the same moment: the request that was waiting for the slot
    gets it before its timeout is run, and used to be written anyway, an order sent
    after its claim had run out (another instance may have sent it meanwhile)."""
    received = bytearray()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(4096):
                received.extend(data)
        finally:  # else the server's wait_closed waits for it (Python 3.12.1+)
            writer.close()

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    session = SmppSession(reader, writer, _no_requests, window=1, response_timeout=1.0, name="esme")
    try:
        slot = session._window
        await slot.acquire()  # a request in flight fills the window
        send_by = loop.time() + 0.2

        def answer_then_freeze() -> None:
            slot.release()  # its answer frees the slot ...
            time.sleep(0.4)  # ... and the process stops until past the send-by time

        loop.call_later(0.05, answer_then_freeze)
        with pytest.raises(NoTimeLeft):
            await session.request(EnquireLink(0), send_by=send_by)
        await asyncio.sleep(0.1)
        assert bytes(received) == b""
        assert not slot.locked()  # the slot is given back
    finally:
        writer.close()
        server.close()
        await server.wait_closed()
