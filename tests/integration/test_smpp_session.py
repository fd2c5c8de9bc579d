"""SmppSession response timeouts against a real peer on 127.0.0.1 that answers some requests.

The session keeps one timer at the earliest deadline of the requests waiting; these
tests pin what a timer per request gave: each unanswered request times out at its own
deadline (not earlier, not much later), whatever was sent or answered before it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from bridge.smpp.pdu import EnquireLink, Pdu, SubmitSm, SubmitSmResp
from bridge.smpp.session import ConnectionLost, ResponseTimeout, SmppSession

pytestmark = pytest.mark.both_loops  # also on uvloop ([server] event_loop)

SLACK = 1.0  # seconds a timeout may come late on a busy test machine
# What "not earlier" allows: the loop clock's grain (uvloop's is 1 ms) and float rounding
# of the time taken (0.3 came out as 0.29999999999927 on uvloop)
GRAIN = 0.001


async def _peer_handler(pdu: Pdu) -> Pdu | None:
    """Answers submit_sm whose text is b"answer"; leaves every other one unanswered."""
    if isinstance(pdu, SubmitSm) and pdu.short_message == b"answer":
        return SubmitSmResp(pdu.sequence, 0, f"id{pdu.sequence}")
    return None


@pytest.fixture
async def session() -> AsyncIterator[SmppSession]:
    peers: list[SmppSession] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = SmppSession(reader, writer, _peer_handler, name="peer")
        peers.append(peer)
        await peer.run()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    ours = SmppSession(reader, writer, _peer_handler, name="ours", window=10)
    task = asyncio.create_task(ours.run())
    yield ours
    await ours.close()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    for peer in peers:
        await peer.close()
    server.close()
    await server.wait_closed()


def _submit(text: bytes) -> SubmitSm:
    return SubmitSm(0, "Bridge", "4915112345678", text)


async def _timed(coro: asyncio.Future[Pdu] | asyncio.Task[Pdu]) -> tuple[float, BaseException]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises((ResponseTimeout, ConnectionLost)) as exc:
        await coro
    return loop.time() - start, exc.value


async def test_answered_requests_do_not_time_out(session: SmppSession) -> None:
    answers = await asyncio.gather(
        *(session.request(_submit(b"answer"), response_timeout=1.0) for _ in range(25))
    )
    assert all(isinstance(a, SubmitSmResp) and a.status == 0 for a in answers)
    await asyncio.sleep(1.2)  # past every deadline: the session stays up
    assert not session.closed
    assert isinstance(await session.request(EnquireLink(0), use_window=False), Pdu)


async def test_a_later_shorter_timeout_fires_at_its_own_deadline(session: SmppSession) -> None:
    long = asyncio.create_task(session.request(_submit(b"silent"), response_timeout=30.0))
    await asyncio.sleep(0.05)
    took, exc = await _timed(
        asyncio.ensure_future(session.request(_submit(b"silent"), response_timeout=0.3))
    )
    assert isinstance(exc, ResponseTimeout)
    assert 0.3 - GRAIN <= took < 0.3 + SLACK
    assert session.closed  # a timeout drops the connection: the other request's outcome is lost
    with pytest.raises(ConnectionLost):
        await long


async def test_a_timeout_after_an_answered_one_is_not_early(session: SmppSession) -> None:
    first = await session.request(_submit(b"answer"), response_timeout=0.4)
    assert isinstance(first, SubmitSmResp)
    await asyncio.sleep(0.2)  # the first request's deadline passes while the second waits
    took, exc = await _timed(
        asyncio.ensure_future(session.request(_submit(b"silent"), response_timeout=0.5))
    )
    assert isinstance(exc, ResponseTimeout)
    assert 0.5 - GRAIN <= took < 0.5 + SLACK


async def test_every_request_of_a_silent_window_ends_by_its_deadline(session: SmppSession) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    waits = [
        asyncio.ensure_future(session.request(_submit(b"silent"), response_timeout=0.3 + i / 10))
        for i in range(5)
    ]
    results = await asyncio.gather(*waits, return_exceptions=True)
    took = loop.time() - start
    assert isinstance(results[0], ResponseTimeout)  # the first deadline drops the connection
    assert all(isinstance(r, ConnectionLost) for r in results[1:])
    assert 0.3 - GRAIN <= took < 0.3 + SLACK
