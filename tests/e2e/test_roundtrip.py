"""The whole bridge: mail in → SMS at a real SMSC → receipt → status mail out; and back by MO."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosmtplib
import pytest

from bridge.sandbox.smsc import read_inbox
from bridge.settings import Settings, load_settings
from tests.conftest import make_settings
from tests.helpers import maildir_messages, make_mail, running_bridge, smtp_sink, wait_for
from tests.peers.net import free_port
from tests.peers.smpp34_peer import Smpp34Peer

pytestmark = pytest.mark.both_loops  # also on uvloop ([server] event_loop)


def _order_status(tmp_path: Path) -> dict[str, str]:
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        return dict(conn.execute('SELECT id, status FROM "order"').fetchall())


async def test_sandbox_round_trip_and_reply_by_sms(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running_bridge(settings) as (_, ep):
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            await smtp.sendmail("demo@example.com", ["+491701234567@eu.rsms.net"], make_mail())
        inbox = await wait_for(lambda: read_inbox(settings.sandbox.inbox, "+491701234567"))
        assert [(m.text, m.parts, m.encoding) for m in inbox] == [
            ("Hello from the bridge", 1, "gsm7")
        ]
        maildir = settings.mailer.maildir
        [status] = await wait_for(lambda: maildir_messages(maildir))
        assert status["To"] == "Demo User <demo@example.com>"
        assert status["In-Reply-To"] == "<original-1@client.example>"
        assert status.get_content_type() == "multipart/alternative"
        assert "was delivered" in status.get_body(("plain",)).get_content()
        assert set(_order_status(tmp_path).values()) == {"delivered"}

        # The phone answers (like its Reply button): the answer comes back as a mail.
        from bridge.sandbox.smsc import send_mo

        assert ep.sandbox is not None
        await send_mo(
            ep.sandbox[0],
            ep.sandbox[1],
            "+491701234567",
            None,
            "Yes, 3pm works",
            settings.sandbox.inbox,
        )
        mails = await wait_for(lambda: [m for m in maildir_messages(maildir) if m["Reply-To"]])
        [answer] = mails
        assert answer["Reply-To"] == "+491701234567@eu.rsms.net"
        assert answer["In-Reply-To"] == "<original-1@client.example>"
        assert "Yes, 3pm works" in answer.get_body(("plain",)).get_content()


def _smpp34_settings(tmp_path: Path, smsc_port: int, sink_port: int) -> Settings:
    path = tmp_path / "bridge.toml"
    path.write_text(
        f"""
database_url = "sqlite:///{tmp_path / "bridge.db"}"
demo = true
[smtp]
port = 0
[[smsc]]
name = "smpp34"
port = {smsc_port}
system_id = "bridge"
password = "secret"
[[routes]]
prefix = ""
transports = ["smpp34"]
[dispatch]
poll_interval = 0.2
retry_min = 0.5
[mailer]
mode = "smtp"
relay_port = {sink_port}
starttls = "off"
poll_interval = 0.2
""",
        encoding="utf-8",
    )
    return load_settings(path, environ={})


async def test_round_trip_through_an_smsc_we_did_not_write(tmp_path: Path) -> None:
    peer = Smpp34Peer()
    await peer.start()
    try:
        async with smtp_sink() as (sink, sink_port):
            settings = _smpp34_settings(tmp_path, peer.port, sink_port)
            async with running_bridge(settings) as (_, ep):
                long_text = "Long message. " * 20  # 280 characters: 2 parts
                async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
                    await smtp.sendmail(
                        "demo@example.com",
                        ["+491701234567@eu.rsms.net"],
                        make_mail(body=long_text.strip()),
                    )
                await peer.wait_until(lambda: len(peer.submits) == 2)
                assert {s.destination_addr for s in peer.submits} == {"491701234567"}
                assert all(s.registered_delivery & 1 for s in peer.submits)
                await wait_for(lambda: sink.envelopes, within=10)
                [msg] = sink.messages()
                assert msg["In-Reply-To"] == "<original-1@client.example>"
                assert "delivered" in msg["Subject"]
                assert _order_status(tmp_path) != {}
                assert set(_order_status(tmp_path).values()) == {"delivered"}
    finally:
        await peer.stop()


async def test_smsc_outage_defers_then_delivers(tmp_path: Path) -> None:
    port = free_port()
    async with smtp_sink() as (sink, sink_port):
        settings = _smpp34_settings(tmp_path, port, sink_port)
        async with running_bridge(settings) as (_, ep):
            async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
                await smtp.sendmail("demo@example.com", ["+491701234567@eu.rsms.net"], make_mail())
            await wait_for(lambda: set(_order_status(tmp_path).values()) == {"deferred"}, within=15)
            peer = Smpp34Peer()
            peer.port = port
            peer.server = type(peer.server)("127.0.0.1", port, system_id="smpp34")
            await peer.start()
            try:
                await wait_for(
                    lambda: set(_order_status(tmp_path).values()) == {"delivered"}, within=30
                )
                await wait_for(lambda: sink.envelopes, within=10)
            finally:
                await peer.stop()
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        events = [e for (e,) in conn.execute("SELECT event FROM order_event ORDER BY id")]
    assert events[0] == "queued" and "deferred" in events and events[-1] == "delivered"
