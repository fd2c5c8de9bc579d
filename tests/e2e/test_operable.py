"""Operating the bridge: /metrics after one mail, /readyz when the SMSC goes away, JSON logs.

The bridge runs with its HTTP listener on 127.0.0.1, port 0; mail goes in through the
real SMTP listener, out to the sandbox SMSC, whose receipt comes back and ends in a
status mail. `mailsms serve` with `log_format = "json"` runs as a separate process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import smtplib
import sys
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
from prometheus_client.parser import text_string_to_metric_families

from bridge.app import Bridge
from bridge.db.engine import open_engine
from bridge.db.store import Store
from bridge.http import checks
from bridge.http.health import readiness
from bridge.http.settings import HttpSettings
from bridge.sandbox.smsc import read_inbox
from bridge.settings import Settings
from tests.conftest import make_settings
from tests.e2e.processes import clean_env, served, wait_until
from tests.helpers import maildir_messages, make_mail, running_bridge, wait_for

MAILSMS = str(Path(sys.executable).parent / "mailsms")
HTTP = HttpSettings(enabled=True, listen="127.0.0.1:0")


def _settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, http=HTTP)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition: (name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def _get(address: tuple[str, int], path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://{address[0]}:{address[1]}") as client:
        return await client.get(path)


async def test_metrics_show_the_mail_the_order_the_submit_the_receipt_and_the_notice(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    async with running_bridge(settings) as (_, ep):
        assert ep.http is not None
        before = samples((await _get(ep.http, "/metrics")).text)
        assert value(before, "mailsms_mails_accepted_total") == 0
        assert value(before, "mailsms_smpp_bind_up", smsc="sandbox", bind="sandbox") == 1

        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            await smtp.sendmail("demo@example.com", ["+491701234567@eu.rsms.net"], make_mail())
        await wait_for(lambda: read_inbox(settings.sandbox.inbox, "+491701234567"))
        await wait_for(lambda: maildir_messages(settings.mailer.maildir))

        response = await _get(ep.http, "/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        found = samples(response.text)

    assert value(found, "mailsms_smtp_sessions_total", result="open") == 1
    assert value(found, "mailsms_smtp_replies_total", code_class="2xx", reason="2.0.0") >= 1
    assert value(found, "mailsms_mails_accepted_total") == 1
    assert value(found, "mailsms_orders_accepted_total") == 1
    assert value(found, "mailsms_customer_orders_accepted_total", customer="demo") == 1
    assert value(found, "mailsms_orders_submitted_total", smsc="sandbox") == 1
    assert value(found, "mailsms_dispatch_outcomes_total", outcome="submitted") == 1
    assert value(found, "mailsms_smpp_submit_sm_total", smsc="sandbox", bind="sandbox") == 1
    assert value(found, "mailsms_receipts_total", smsc="sandbox", state="delivered") == 1
    assert value(found, "mailsms_orders_final_total", status="delivered") == 1
    assert value(found, "mailsms_notices_total", kind="status", result="sent") == 1
    assert value(found, "mailsms_order_submit_seconds_count") == 1
    assert value(found, "mailsms_order_final_seconds_count") == 1
    # Read at scrape time: nothing waits any more, the database answered.
    assert value(found, "mailsms_queue_depth", queue="orders", status="queued") == 0
    assert value(found, "mailsms_queue_depth", queue="notices", status="queued") == 0
    assert value(found, "mailsms_oldest_due_order_seconds") == 0
    assert value(found, "mailsms_scrape_ok") == 1


async def test_a_refused_sender_is_counted_by_code_class_and_enhanced_code(
    tmp_path: Path,
) -> None:
    async with running_bridge(_settings(tmp_path)) as (_, ep):
        assert ep.http is not None
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            await smtp.ehlo()
            response = await smtp.execute_command(b"MAIL", b"FROM:<nobody@unknown.example>")
            assert response.code == 550
        found = samples((await _get(ep.http, "/metrics")).text)
    refused = {
        dict(labels)["reason"]: n
        for (name, labels), n in found.items()
        if name == "mailsms_smtp_replies_total" and dict(labels)["code_class"] == "5xx"
    }
    assert refused == {"5.7.1": 1.0}
    assert value(found, "mailsms_smtp_replies_total", code_class="2xx", reason="2.0.0") == 1  # EHLO


async def test_readyz_names_the_smsc_while_it_is_down_and_healthz_answers(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    async with running_bridge(settings) as (bridge, ep):
        assert ep.http is not None and bridge.sandbox is not None
        assert (await _get(ep.http, "/healthz")).json() == {"status": "ok"}
        ready = await _get(ep.http, "/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["failed"] == []
        assert set(ready.json()["checks"]) == {"database", "smsc", "smtp", "queues"}

        port = bridge.sandbox.port
        await bridge.sandbox.stop()

        async def not_ready() -> httpx.Response | None:
            response = await _get(ep.http, "/readyz")  # type: ignore[arg-type]
            return response if response.status_code == 503 else None

        down = await _poll(not_ready)
        body: dict[str, Any] = down.json()
        assert body["status"] == "not ready"
        assert body["failed"] == ["smsc"]
        assert "no SMSC bind is up" in body["checks"]["smsc"]["error"]
        assert body["checks"]["database"] == {"ok": True}
        assert (await _get(ep.http, "/healthz")).status_code == 200  # alive, not ready
        metrics = samples((await _get(ep.http, "/metrics")).text)
        assert value(metrics, "mailsms_smpp_bind_up", smsc="sandbox", bind="sandbox") == 0

        # The SMSC is back on its port: the bind comes up, the bridge is ready again.
        bridge.sandbox.config = dataclasses.replace(bridge.sandbox.config, port=port)
        await bridge.sandbox.start()

        async def ready_again() -> httpx.Response | None:
            response = await _get(ep.http, "/readyz")  # type: ignore[arg-type]
            return response if response.status_code == 200 else None

        assert (await _poll(ready_again, within=20.0)).json()["failed"] == []


async def _poll(probe: Any, within: float = 10.0) -> httpx.Response:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = await probe()
        if found is not None:
            return found  # type: ignore[no-any-return]
        if loop.time() > deadline:
            raise AssertionError(f"/readyz did not change within {within} s")
        await asyncio.sleep(0.1)


async def test_the_database_check_fails_when_the_database_does_not_answer_in_time() -> None:
    """A PostgreSQL port that accepts and never answers: the check gives up after its timeout."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # connect_timeout: the database thread itself gives up a little later, so the store closes
    url = f"postgresql://mailsms@127.0.0.1:{port}/mailsms?connect_timeout=2&sslmode=disable"
    store = Store(open_engine(url))
    try:
        ok, body = await readiness([checks.database(store)], 0.5)
    finally:
        await store.close()
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()
    assert not ok
    assert body["failed"] == ["database"]
    assert body["checks"] == {"database": {"ok": False, "error": "no answer within 0.5 s"}}


async def test_the_database_check_fails_with_the_reason_when_the_database_refuses() -> None:
    async def close(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = Store(open_engine(f"postgresql://mailsms@127.0.0.1:{port}/mailsms"))
    try:
        ok, body = await readiness([checks.database(store)], 5.0)
    finally:
        server.close()
        await server.wait_closed()
        await store.close()
    assert not ok
    error = body["checks"]["database"]["error"]  # type: ignore[index]
    # the connection, not a write, failed: the store says so (StorageUnreachable)
    assert error.startswith("StorageUnreachable: ") and "server closed the connection" in error


def test_unknown_paths_are_404_json(tmp_path: Path) -> None:
    async def run() -> httpx.Response:
        bridge = Bridge(_settings(tmp_path))
        ep = await bridge.start()
        try:
            assert ep.http is not None
            return await _get(ep.http, "/nope")
        finally:
            await bridge.stop(grace=1.0)

    response = asyncio.run(run())
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found"}


JSON_SETTINGS = """
database_url = "sqlite:///{tmp}/bridge.db"
demo = true
log_format = "json"
[smtp]
port = 0
[http]
enabled = true
listen = "127.0.0.1:0"
[sandbox]
enabled = true
port = 0
receipt_delay = 0.05
inbox = "{tmp}/sandbox/inbox.jsonl"
[mailer]
maildir = "{tmp}/maildir"
poll_interval = 0.2
[dispatch]
poll_interval = 0.2
"""


def test_serve_with_json_logs_carries_the_ids_and_curl_metrics_shows_the_mail(
    tmp_path: Path,
) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(JSON_SETTINGS.format(tmp=tmp_path), encoding="utf-8")
    with served([MAILSMS, "serve", "-c", str(config)], tmp_path, clean_env()) as bridge:
        http_port = int(
            wait_until(
                lambda: re.search(r"HTTP listening on http://127\.0\.0\.1:(\d+)", bridge.log()),
                what="the HTTP listener",
            )[1]
        )
        with smtplib.SMTP("127.0.0.1", bridge.smtp_port) as smtp:
            smtp.ehlo()
            code, _ = smtp.docmd("MAIL FROM:<nobody@unknown.example>")
            assert code == 550
            smtp.rset()
            smtp.sendmail("demo@example.com", ["+491701234567@eu.rsms.net"], make_mail())
        wait_until(lambda: maildir_messages(tmp_path / "maildir"), what="the status mail")
        text = httpx.get(f"http://127.0.0.1:{http_port}/metrics").text
        found = samples(text)
        assert value(found, "mailsms_mails_accepted_total") == 1
        assert value(found, "mailsms_orders_submitted_total", smsc="sandbox") == 1
        assert value(found, "mailsms_receipts_total", smsc="sandbox", state="delivered") == 1
        assert value(found, "mailsms_notices_total", kind="status", result="sent") == 1
        wait_until(lambda: "sent to <demo@example.com>" in bridge.log(), what="the notice line")
    lines = [json.loads(line) for line in bridge.lines if line.strip()]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)

    refused = next(
        line for line in lines if "refused" in line["message"] and "MAIL" in line["message"]
    )
    accepted = next(line for line in lines if line["message"].endswith("accepted"))
    mail_id = accepted["mail_id"]
    assert accepted["customer"] == "demo"
    assert accepted["message"].startswith(mail_id)
    assert refused["session"] and accepted["session"]
    # One connection: the refusal and the accepted mail share the session id.
    assert refused["session"] == accepted["session"]
    assert "mail_id" not in refused
    order_lines = [line for line in lines if line.get("order_id") == f"{mail_id}.1"]
    assert any(line.get("smsc") == "sandbox" for line in order_lines), order_lines
    notice = next(line for line in lines if "sent to <demo@example.com>" in line["message"])
    assert notice["notice_id"] and notice["order_id"] == f"{mail_id}.1"
    assert notice["mail_id"] == mail_id
