"""MO → HTTP push to a local server: HMAC verified, 503 retried, redirect refused → admin notice."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiosmtplib

from bridge.db.store import run_sync
from bridge.inbound.admin import apply_numbers
from bridge.inbound.config import parse_numbers
from bridge.provision.apply import change_setting
from bridge.push.body import verify
from bridge.push.settings import PushSettings
from bridge.sandbox.smsc import send_mo
from tests.conftest import make_settings
from tests.helpers import maildir_messages, make_mail, running_bridge, wait_for

SECRET = "s3cret"


class _Server(ThreadingHTTPServer):
    requests: list[tuple[str, str, dict[str, str], bytes]]
    fail_first: int


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests.append((self.command, self.path, dict(self.headers), body))
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        elif self.server.fail_first > 0:
            self.server.fail_first -= 1
            self.send_response(503)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def http_server() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.requests = []
    server.fail_first = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _numbers(port: int, path: str) -> str:
    return f"""
[[customer]]
name = "demo"
admin = "admin@example.com"

[[number]]
number = "+4915550000009"
customer = "demo"

[[number.actions]]
type = "push"
url = "http://127.0.0.1:{port}{path}"
method = "PUT"
auth = "hmac"
secret = "{SECRET}"
headers = {{X-Tenant = "demo"}}
"""


async def test_push_signed_retried_and_redirect_refused(tmp_path: Path) -> None:
    push = PushSettings(allow_hosts=("127.0.0.1",), allow_http=True, retry_min=0.2, retry_max=0.5)
    settings = make_settings(tmp_path, push=push)
    with http_server() as server:
        server.fail_first = 1
        async with running_bridge(settings) as (bridge, ep):
            assert bridge.store is not None and ep.sandbox is not None
            spec = parse_numbers(_numbers(server.server_address[1], "/sms"))
            run_sync(bridge.store.engine, apply_numbers, spec)
            await send_mo(
                ep.sandbox[0], ep.sandbox[1], "+491701234567", "+4915550000009", "Hi <3", Path("x")
            )
            await wait_for(lambda: len(server.requests) >= 2, within=10)
            method, path, headers, body = server.requests[-1]
            assert (method, path, headers["X-Tenant"]) == ("PUT", "/sms", "demo")
            assert verify(SECRET, headers["X-Mailsms-Signature"], body, int(time.time()))
            assert not verify("wrong", headers["X-Mailsms-Signature"], body, int(time.time()))
            data = json.loads(body)
            assert (data["from"], data["to"], data["text"]) == (
                "+491701234567",
                "+4915550000009",
                "Hi <3",
            )

            spec = parse_numbers(_numbers(server.server_address[1], "/moved"))
            run_sync(bridge.store.engine, apply_numbers, spec)
            await send_mo(
                ep.sandbox[0], ep.sandbox[1], "+491701234567", "+4915550000009", "again", Path("x")
            )
            [notice] = await wait_for(
                lambda: [
                    m
                    for m in maildir_messages(settings.mailer.maildir)
                    if "push" in str(m["Subject"])
                ]
            )
            assert notice["To"].addresses[0].addr_spec == "admin@example.com"
            assert "redirects are not followed" in notice.get_body(("plain",)).get_content()
            assert [r[1] for r in server.requests].count("/moved") == 1  # not followed, not retried


async def test_order_status_is_pushed_when_the_policy_asks(tmp_path: Path) -> None:
    push = PushSettings(allow_hosts=("127.0.0.1",), allow_http=True)
    settings = make_settings(tmp_path, push=push)
    with http_server() as server:
        async with running_bridge(settings) as (bridge, ep):
            assert bridge.store is not None
            port = server.server_address[1]
            spec = parse_numbers(
                f"""
[[customer]]
name = "demo"
[customer.status_push]
url = "http://127.0.0.1:{port}/status"
auth = "hmac"
secret = "{SECRET}"
"""
            )
            run_sync(bridge.store.engine, apply_numbers, spec)
            run_sync(
                bridge.store.engine,
                change_setting,
                "user",
                "demo@example.com",
                "notify_channel",
                ["html", "push"],
            )
            async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
                await smtp.sendmail("demo@example.com", ["+491701234567@eu.rsms.net"], make_mail())
            await wait_for(lambda: server.requests, within=10)
    method, path, headers, body = server.requests[0]
    assert (method, path) == ("POST", "/status")
    assert verify(SECRET, headers["X-Mailsms-Signature"], body, int(time.time()))
    data = json.loads(body)
    assert data["type"] == "order_status" and data["status"] == "delivered"
    assert data["recipient"] == "+491701234567" and data["order_id"].endswith(".1")
