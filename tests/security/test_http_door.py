"""The HTTP door (portal, REST API, health and metrics): time and connection limits.

uvicorn closes an idle keep-alive connection, but nothing bounds how long a request may
take to arrive: its keep-alive timer restarts with every byte, so a client that trickles
a request a byte at a time (Slowloris) holds a connection, and the file descriptor the
SMTP and SMPP doors of the same process need, for as long as it likes. A request must
now arrive whole (headers and body) within `[http] request_timeout`; connections are
capped per client address and in total. The clients here are raw sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from pathlib import Path

import httpx
import pytest
import trustme

from bridge.http.door import HEAD_LIMIT
from bridge.http.settings import HttpSettings
from tests.conftest import make_settings
from tests.helpers import our_faults, running_bridge

TRICKLE = 0.3  # seconds between the bytes of a slow request


async def _open(address: tuple[str, int]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*address)


async def _closed_within(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, trickle: bytes, seconds: float
) -> bytes:
    """Write `trickle` a byte every TRICKLE seconds; what the server sent once it closed
    the connection, or AssertionError when it has not closed it within `seconds`."""

    async def dribble() -> None:
        for byte in trickle:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(TRICKLE)

    task = asyncio.create_task(dribble())
    try:
        async with asyncio.timeout(seconds):
            return await reader.read()  # b"" or an answer, then EOF
    except TimeoutError:
        raise AssertionError(f"still open after {seconds} s") from None
    finally:
        task.cancel()
        writer.close()


@pytest.fixture
def door(tmp_path: Path) -> HttpSettings:
    return HttpSettings(
        enabled=True, listen="127.0.0.1:0", request_timeout=1.0, max_connections_per_ip=4
    )


async def test_a_request_must_arrive_whole_within_request_timeout(
    tmp_path: Path, door: HttpSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with running_bridge(make_settings(tmp_path, http=door)) as (_, ep):
        assert ep.http is not None
        # headers a byte at a time, never ending
        reader, writer = await _open(ep.http)
        answer = await _closed_within(reader, writer, b"GET /healthz HTTP/1.1\r\n" + b"X" * 60, 3)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        # the headers in time, the body a byte at a time
        reader, writer = await _open(ep.http)
        writer.write(
            b"POST /api/v1/sms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 200\r\n\r\n"
        )
        await _closed_within(reader, writer, b"{" + b" " * 100, 3)
        # a first request answered, the second on the same connection trickled
        reader, writer = await _open(ep.http)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = await reader.readuntil(b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 200 "), first
        rest = await _closed_within(
            reader, writer, b"GET /healthz HTTP/1.1\r\nX-A: " + b"a" * 60, 3
        )
        assert b"408" in rest, rest
        # a request that comes in pieces, whole within the time, is answered
        reader, writer = await _open(ep.http)
        for piece in (b"GET /healthz HT", b"TP/1.1\r\nHost: x\r\n", b"\r\n"):
            writer.write(piece)
            await asyncio.sleep(0.2)
        answer = await reader.readuntil(b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        writer.close()
    assert any("request_timeout" in r.getMessage() for r in caplog.records)
    assert not list(our_faults(caplog))


async def test_connections_are_capped_per_address(tmp_path: Path, door: HttpSettings) -> None:
    async with running_bridge(make_settings(tmp_path, http=door)) as (_, ep):
        assert ep.http is not None
        held = [await _open(ep.http) for _ in range(4)]
        reader, writer = await _open(ep.http)
        async with asyncio.timeout(3):
            assert await reader.read() == b""  # the fifth is closed at once
        writer.close()
        # another address still gets in
        reader, writer = await asyncio.open_connection(*ep.http, local_addr=("127.0.0.2", 0))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 ")
        writer.close()
        for _, w in held:
            w.close()


async def _answer(reader: asyncio.StreamReader) -> bytes:
    """An answer's head, its body (by its Content-Length) read past."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    await reader.readexactly(length)
    return head


async def _endless_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """Send a header that never ends, 8 KiB at a time, each piece read by the server
    before the next, until twice HEAD_LIMIT; the head of the answer, b"" for none."""
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
    try:
        for _ in range(2 * HEAD_LIMIT // 8192):
            writer.write(b"a" * 8192)
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 0.05)
        return b""
    finally:
        writer.close()


async def test_a_request_head_is_bounded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The parser keeps a head whole until it ends and bounds nothing itself: a head past
    HEAD_LIMIT closes the connection with 431, one below it is answered, and so is a
    request after a large body on the same connection (only heads count). The deadline is
    far: what ends the connections here is not time."""
    caplog.set_level(logging.INFO)
    door = HttpSettings(enabled=True, listen="127.0.0.1:0", request_timeout=30.0)
    async with running_bridge(make_settings(tmp_path, http=door)) as (_, ep):
        assert ep.http is not None
        # a header that never ends, in pieces
        answer = await _endless_head(*await _open(ep.http))
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]
        # many headers, below the limit in all, in pieces: answered
        reader, writer = await _open(ep.http)
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
            b"X-Field-%d: %s\r\n" % (n, b"v" * 900) for n in range(HEAD_LIMIT // 1024)
        )
        assert HEAD_LIMIT // 2 < len(head) < HEAD_LIMIT
        for start in range(0, len(head), 4096):
            writer.write(head[start : start + 4096])
            await writer.drain()
            await asyncio.sleep(0.005)
        writer.write(b"\r\n")
        assert (await _answer(reader)).startswith(b"HTTP/1.1 200 ")
        # a body larger than the limit, in pieces, then a request on the same connection
        body = b'{"to": ["+491701234567"], "text": "' + b"x" * (2 * HEAD_LIMIT) + b'"}'
        writer.write(
            b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        for start in range(0, len(body), 8192):
            writer.write(body[start : start + 8192])
            await writer.drain()
            await asyncio.sleep(0.002)
        answer = await _answer(reader)
        assert answer.startswith(b"HTTP/1.1 401 "), answer  # no API key; not refused as a head
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await _answer(reader)).startswith(b"HTTP/1.1 200 ")
        writer.close()
    assert any("over 65536 bytes" in r.getMessage() for r in caplog.records)
    assert not list(our_faults(caplog))


async def test_the_door_serves_https_with_its_limits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`[http] tls_cert`/`tls_key`: HTTPS with the certificate, nothing over plain HTTP,
    and the head's bound holds inside TLS (its records arrive as reads of their own)."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = tmp_path / "http.crt", tmp_path / "http.key"
    cert.write_bytes(b"".join(p.bytes() for p in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(key))
    door = HttpSettings(
        enabled=True, listen="127.0.0.1:0", request_timeout=30.0, tls_cert=cert, tls_key=key
    )
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    async with running_bridge(make_settings(tmp_path, http=door)) as (_, ep):
        assert ep.http is not None
        host, port = ep.http
        async with httpx.AsyncClient(verify=trusted) as client:
            answer = await client.get(f"https://{host}:{port}/healthz")
        assert answer.status_code == 200, answer.text
        # plain HTTP to the HTTPS listener: no answer in HTTP
        reader, writer = await _open(ep.http)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(5):
            with contextlib.suppress(ConnectionError):
                assert not (await reader.read()).startswith(b"HTTP/")
        writer.close()
        # a head that never ends, inside TLS
        refused = await _endless_head(*await asyncio.open_connection(host, port, ssl=trusted))
        assert refused.startswith(b"HTTP/1.1 431 "), refused[:80]
    assert not list(our_faults(caplog))
