"""The push worker connects to the address the guard checked, against a real HTTP server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

from bridge.push.settings import PushSettings
from bridge.push.target import PushAction
from bridge.push.worker import Pusher


class _Server(ThreadingHTTPServer):
    seen: list[tuple[str, str]]  # (peer address, Host header)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.seen.append((self.client_address[0], self.headers.get("Host", "")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _server() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.seen = []
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _pusher(**settings: Any) -> Pusher:
    settings_ = PushSettings(allow_http=True, timeout=5.0, **settings)
    return Pusher(settings_, store=None, contacts=lambda conn, customer: None)  # type: ignore[arg-type]


async def test_the_request_goes_to_the_vetted_address_with_the_name_as_host() -> None:
    with _server() as server:
        port = server.server_address[1]
        action = PushAction(url=f"http://localhost:{port}/hook")
        outcome = await _pusher(allow_hosts=("localhost",)).send(action, b"{}", "application/json")
    assert outcome.ok, outcome.detail
    assert server.seen == [("127.0.0.1", f"localhost:{port}")]


async def test_a_mapped_or_translated_loopback_address_never_reaches_the_server() -> None:
    with _server() as server:
        port = server.server_address[1]
        for host in ("[::ffff:127.0.0.1]", "[::127.0.0.1]", "[::ffff:0:7f00:1]", "[fec0::1]"):
            action = PushAction(url=f"http://{host}:{port}/hook")
            outcome = await _pusher().send(action, b"{}", "application/json")
            assert not outcome.ok and not outcome.retry, outcome.detail
            assert "SSRF guard" in outcome.detail
    assert server.seen == []
