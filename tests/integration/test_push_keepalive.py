"""The push worker keeps a receiver's connection for its next push, against a real HTTP
(and HTTPS) server: one connection for many pushes, never one made for another host name,
a kept connection the receiver closed as a push went out retried once over a new one,
and idle connections closed after `keepalive` seconds; and its outcomes, recorded
together in one statement, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
import uvicorn
from sqlalchemy import Engine, select

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.engine import upgrade
from bridge.db.store import Store, run_sync
from bridge.metrics import Metrics
from bridge.push.delivery_status import PushStatus
from bridge.push.queue import PushRecord, queue_push, record_push, record_pushes
from bridge.push.settings import PushSettings
from bridge.push.tables import PushDelivery
from bridge.push.target import PushAction
from bridge.push.worker import Pusher
from tests.peers.dns_server import dns_server, run_behind_resolver
from tests.peers.http_receiver import http_receiver


@contextlib.asynccontextmanager
async def _pushing(
    store: Any = None, metrics: Metrics | None = None, **settings: Any
) -> AsyncIterator[Pusher]:
    """A push worker for loopback receivers; its kept connections closed at the end."""
    defaults = {"allow_http": True, "allow_hosts": ("127.0.0.1", "localhost"), "timeout": 5.0}
    settings_ = PushSettings(**(defaults | settings))
    pusher = Pusher(settings_, store=store, contacts=lambda conn, customer: None, metrics=metrics)
    try:
        yield pusher
    finally:
        await pusher.close()


def _connections(metrics: Metrics) -> dict[str, int]:
    """mailsms_push_connections_total by event."""
    return {
        event: int(
            metrics.registry.get_sample_value("mailsms_push_connections_total", {"event": event})
            or 0
        )
        for event in ("opened", "reused", "ended_by_receiver")
    }


async def _push(pusher: Pusher, url: str) -> tuple[bool, str]:
    outcome = await pusher.send(PushAction(url=url), b'{"a": 1}', "application/json")
    return outcome.ok, outcome.detail


@pytest.mark.both_loops  # also on uvloop ([server] event_loop)
async def test_pushes_to_one_receiver_share_one_connection() -> None:
    metrics = Metrics.unregistered()
    async with http_receiver() as receiver, _pushing(metrics=metrics) as pusher:
        for _ in range(5):
            assert await _push(pusher, receiver.url("/keep")) == (True, "HTTP 200")
    assert receiver.requests["/keep"] == 5
    assert receiver.connections == 1
    assert _connections(metrics) == {"opened": 1, "reused": 4, "ended_by_receiver": 0}


async def test_with_keepalive_0_each_push_has_a_connection_of_its_own() -> None:
    async with http_receiver() as receiver, _pushing(keepalive=0) as pusher:
        for _ in range(3):
            assert await _push(pusher, receiver.url("/keep")) == (True, "HTTP 200")
    assert receiver.connections == 3


@pytest.mark.both_loops  # also on uvloop ([server] event_loop)
async def test_a_kept_connection_closed_as_a_push_goes_out_is_retried_once_over_a_new_one() -> None:
    metrics = Metrics.unregistered()
    async with http_receiver() as receiver, _pushing(metrics=metrics) as pusher:
        # the first push leaves its connection kept; the receiver reads the second
        # push on it and closes: the push goes again over a new connection
        assert await _push(pusher, receiver.url("/keep-stale")) == (True, "HTTP 200")
        assert await _push(pusher, receiver.url("/keep-stale")) == (True, "HTTP 200")
        # a new connection closed without an answer is not sent again at once
        ok, detail = await _push(pusher, receiver.url("/close"))
    assert not ok and "RemoteProtocolError" in detail, detail
    assert receiver.requests == {"/keep-stale": 3, "/close": 1}
    assert receiver.connections == 3
    assert _connections(metrics) == {"opened": 2, "reused": 0, "ended_by_receiver": 1}


async def test_a_receivers_idle_connections_are_closed_after_keepalive(store: Store) -> None:
    async with http_receiver() as receiver, _pushing(store, keepalive=0.2) as pusher:
        assert await _push(pusher, receiver.url("/keep")) == (True, "HTTP 200")
        await pusher.step()  # within keepalive: kept
        await asyncio.sleep(0.1)
        assert receiver.open_connections == 1
        await asyncio.sleep(0.3)
        await pusher.step()  # idle for longer than keepalive: closed
        for _ in range(50):
            if not receiver.open_connections:
                break
            await asyncio.sleep(0.02)
        assert receiver.open_connections == 0
        assert await _push(pusher, receiver.url("/keep")) == (True, "HTTP 200")
    assert receiver.connections == 2


@pytest.fixture
def localhost_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A receiver's TLS context with a certificate for "localhost" only, from a CA the
    pusher trusts (as a company adds its CA to the system's store)."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server)
    return server


@pytest.mark.both_loops  # also on uvloop ([server] event_loop)
async def test_https_pushes_share_a_connection_only_under_the_name_it_was_made_for(
    localhost_tls: ssl.SSLContext,
) -> None:
    async with http_receiver(localhost_tls) as receiver, _pushing() as pusher:
        assert await _push(pusher, receiver.url("/keep", "localhost")) == (True, "HTTP 200")
        # the same address and port, another name: the kept connection's certificate
        # is not valid for it, so it must not carry this push
        ok, detail = await _push(pusher, receiver.url("/keep", "127.0.0.1"))
        assert await _push(pusher, receiver.url("/keep", "localhost")) == (True, "HTTP 200")
    assert not ok and "CERTIFICATE_VERIFY_FAILED" in detail, detail
    assert receiver.connections == 1
    assert receiver.requests["/keep"] == 2
    assert receiver.hosts == [f"localhost:{receiver.port}"] * 2
    assert receiver.sni.count("localhost") == 1


def test_outcomes_recorded_together_set_what_each_says(engine: Engine) -> None:
    """The worker's group commit records several attempts in one statement: a sent push
    gets its `sent_at`, a deferred one its next attempt, a failed one neither; a push given
    up on meanwhile stays as it is."""
    upgrade(engine)
    now = utcnow()
    target = {"type": "push", "url": "https://push.example/hook"}
    ids = [
        run_sync(engine, queue_push, 0, None, target, "{}", "application/json", now, 3600.0)
        for _ in range(4)
    ]
    run_sync(engine, record_push, ids[3], now, PushStatus.FAILED, "given up")
    later, again = now + timedelta(seconds=5), now + timedelta(minutes=10)
    records = [
        PushRecord(ids[0], later, PushStatus.SENT, "HTTP 200"),
        PushRecord(ids[1], later, PushStatus.DEFERRED, "HTTP 503", again),
        PushRecord(ids[2], later, PushStatus.FAILED, "HTTP 404"),
        PushRecord(ids[3], later, PushStatus.SENT, "HTTP 200"),
    ]
    run_sync(engine, record_pushes, records)
    push = table(PushDelivery)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(push))}

    def naive(at: datetime | None) -> datetime | None:
        return at.replace(tzinfo=None) if at is not None else None

    got = [
        (rows[i].status, rows[i].error, naive(rows[i].sent_at), naive(rows[i].next_attempt_at))
        for i in ids
    ]
    n, l_, a = naive(now), naive(later), naive(again)
    assert got == [
        (PushStatus.SENT, "HTTP 200", l_, n),
        (PushStatus.DEFERRED, "HTTP 503", None, a),
        (PushStatus.FAILED, "HTTP 404", None, n),
        (PushStatus.FAILED, "given up", None, n),
    ]


@pytest.mark.both_loops  # also on uvloop ([server] event_loop)
async def test_an_answer_left_over_on_a_kept_connection_is_not_taken_for_the_next_push() -> None:
    """A receiver that answered one push twice: its second answer waits on the kept
    connection, and the next push must not take it for its own (a 200 for a push the
    receiver answers 503 would be a push lost)."""
    metrics = Metrics.unregistered()
    async with http_receiver() as receiver, _pushing(metrics=metrics) as pusher:
        assert await _push(pusher, receiver.url("/keep-twice")) == (True, "HTTP 200")
        assert await _push(pusher, receiver.url("/keep-503")) == (False, "HTTP 503")
        assert await _push(pusher, receiver.url("/keep")) == (True, "HTTP 200")
    # the 503 push went out over the kept connection, its answer was seen to be the
    # leftover, and it went again once over a connection of its own, which answered it;
    # the kept connection was closed, so the last push made a third
    assert receiver.requests == {"/keep-twice": 1, "/keep-503": 2, "/keep": 1}
    assert receiver.connections == 3
    assert _connections(metrics) == {"opened": 3, "reused": 0, "ended_by_receiver": 1}


@pytest.mark.both_loops  # also on uvloop ([server] event_loop)
async def test_over_https_too_an_answer_left_over_is_not_taken_for_the_next_push(
    localhost_tls: ssl.SSLContext,
) -> None:
    """As above, where the leftover waits in the TLS layer's buffer."""
    async with http_receiver(localhost_tls) as receiver, _pushing() as pusher:
        twice, busy = (
            receiver.url("/keep-twice", "localhost"),
            receiver.url("/keep-503", "localhost"),
        )
        assert await _push(pusher, twice) == (True, "HTTP 200")
        assert await _push(pusher, busy) == (False, "HTTP 503")
    assert receiver.requests == {"/keep-twice": 1, "/keep-503": 2}


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the test's loop keeps its signals
        yield


@contextlib.asynccontextmanager
async def _uvicorn(keep_alive: float) -> AsyncIterator[tuple[int, list[str]]]:
    """uvicorn (h11), a receiver we did not write, closing idle connections after
    `keep_alive` seconds; its port and the paths it answered."""
    answered: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        answered.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"thanks"})

    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_keep_alive=keep_alive,  # type: ignore[arg-type]  # typed int, any seconds work
    )
    server = _Uvicorn(config)
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setblocking(False)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn sets a flag, no event)
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1], answered
    finally:
        server.should_exit = True
        await task


@pytest.mark.both_loops  # also on uvloop ([server] event_loop)
async def test_a_receiver_that_ends_idle_connections_sooner_gets_every_push() -> None:
    """uvicorn ends a connection idle for 0.3 s, the bridge keeps it for 2 s: pushes
    just before, at and after that moment all go through, none is deferred, and a push
    is sent twice only where the receiver closed the connection under it."""
    metrics = Metrics.unregistered()
    async with _uvicorn(0.3) as (port, answered), _pushing(metrics=metrics) as pusher:
        outcomes = []
        for i, pause in enumerate((0, 0.1, 0.28, 0.3, 0.32, 0.35, 0.2, 0.31, 0.29, 0.5)):
            await asyncio.sleep(pause)
            outcomes.append(await _push(pusher, f"http://127.0.0.1:{port}/{i}"))
    assert outcomes == [(True, "HTTP 200")] * 10
    counts = _connections(metrics)
    assert counts["opened"] >= 2 and counts["reused"] >= 1, counts  # kept, and given up
    assert sorted(set(answered)) == sorted(f"/{i}" for i in range(10))
    assert len(answered) == 10 + counts["ended_by_receiver"]


async def _named_receiver(folder: str) -> None:
    """Run in a network and mount namespace whose resolv.conf names 127.0.0.1: five
    pushes to a receiver by name, a DNS server on port 53 answering for it. Prints the
    outcomes and the questions the DNS server was asked, as JSON."""
    zone = {"hooks.example": [("A", "127.0.0.1")]}
    async with (
        dns_server(zone, port=53) as dns,
        http_receiver() as receiver,
        _pushing(allow_hosts=("hooks.example",)) as pusher,
    ):
        url = receiver.url("/keep", "hooks.example")
        outcomes: list[object] = [await _push(pusher, url) for _ in range(5)]
        kept = len(dns.queries)
        # a push whose connection fails drops its vetted address: the next attempt
        # at that URL looks the name up again
        closing = receiver.url("/close", "hooks.example")
        outcomes += [(await _push(pusher, closing))[0] for _ in range(2)]
    asked = [rdtype for _, rdtype in dns.queries]
    print(json.dumps({"outcomes": outcomes, "kept": kept, "a": asked.count("A")}))


def test_a_receivers_name_is_looked_up_once_for_many_pushes(tmp_path: Path) -> None:
    """Each push looked its receiver's name up again (a thread and a DNS query per push,
    and a resolver's hiccup deferred pushes to a receiver already connected); the
    vetted address is now used for 30 s, or until a connection to it fails."""
    seen = run_behind_resolver("tests.integration.test_push_keepalive", "_named_receiver", tmp_path)
    assert seen["outcomes"] == [[True, "HTTP 200"]] * 5 + [False, False]
    # one lookup for five pushes: the resolver asked for A (and AAAA) once, not five times
    assert 1 <= seen["kept"] <= 2, seen
    # then one lookup for each attempt at the URL whose connections failed
    assert seen["a"] == 3, seen
