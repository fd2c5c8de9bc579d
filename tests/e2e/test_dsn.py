"""DSNs end to end: SAP's replay gets its report; NOTIFY, RET and DELAY are honoured."""

from __future__ import annotations

import importlib.util
import sqlite3
import ssl
import sys
from collections.abc import Sequence
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import trustme

from bridge.db.clock import utcnow
from bridge.db.store import run_sync
from bridge.intake.access_store import set_access
from bridge.intake.velocity_store import held_orders, refuse_orders
from bridge.outcomes.steps import STEPS
from bridge.sandbox.settings import SandboxRuleSettings
from bridge.settings import Settings, load_settings
from tests.helpers import running_bridge, smtp_sink, wait_for
from tests.peers.net import free_port
from tests.smtp_probe import RawSmtp

EXAMPLE = Path(__file__).parents[2] / "examples" / "sap_bc_smtp"


def _replay_module() -> Any:
    spec = importlib.util.spec_from_file_location("sap_replay", EXAMPLE / "replay.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _sap_settings(tmp_path: Path, relay_port: int, ca: trustme.CA, **sandbox: Any) -> Settings:
    """The example's bridge.toml with every port free and every path in tmp_path."""
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    s = load_settings(EXAMPLE / "bridge.toml", environ={})
    return s.model_copy(
        update={
            "database_url": f"sqlite:///{tmp_path / 'bridge.db'}",
            "smtp": s.smtp.model_copy(
                update={"port": 0, "tls_cert": cert_file, "tls_key": key_file}
            ),
            "sandbox": s.sandbox.model_copy(
                update={
                    "port": 0,
                    "inbox": tmp_path / "inbox.jsonl",
                    "receipt_delay": 0.05,
                    **sandbox,
                }
            ),
            "mailer": s.mailer.model_copy(update={"relay_port": relay_port, "poll_interval": 0.2}),
        }
    )


async def test_sap_replay_gets_a_delivered_dsn(tmp_path: Path) -> None:
    ca = trustme.CA()
    listen = free_port()
    replay = _replay_module()
    async with running_bridge(_sap_settings(tmp_path, listen, ca)) as (_, ep):
        context = ssl.create_default_context()
        ca.configure_trust(context)
        report = await replay.replay(
            host="127.0.0.1", port=ep.smtp[1], sender="demo@example.com", to="+491701234567",
            domain="eu.rsms.net", listen_port=listen, tls=context, wait=15.0,
        )  # fmt: skip
    assert report.problems == (), report.problems
    assert report.queued_reply.startswith("250 2.0.0 Ok: queued as")
    fields = report.fields
    assert fields["Action"] == "delivered" and fields["Status"] == "2.0.0"
    assert fields["Final-Recipient"] == "rfc822; SMS=+491701234567@eu.rsms.net"
    assert fields["Original-Recipient"] == "rfc822;SMS=+491701234567@eu.rsms.net"
    assert fields["Reporting-MTA"] == "dns; localhost"
    assert fields["Original-Envelope-Id"].startswith("SAP")
    dsn = report.dsn
    assert dsn["Auto-Submitted"] == "auto-replied"
    assert dsn.get_param("report-type") == "delivery-status"
    kinds = [p.get_content_type() for p in dsn.iter_parts()]
    assert kinds == ["text/plain", "message/delivery-status", "text/rfc822-headers"]
    headers = dsn.get_payload()[2].get_content()
    assert "Subject: PM order 4711" in headers and "Pump P-101" not in headers  # RET=HDRS


async def _send(
    port: int,
    mail_args: str,
    rcpt_args: str,
    body: bytes = b"Alarm!",
    to: str = "+491701234567",
) -> str:
    c = await RawSmtp.connect("127.0.0.1", port)
    await c.read_reply()
    await c.command("EHLO sap.example")
    assert (await c.command(f"MAIL FROM:<demo@example.com>{mail_args}")).startswith("250")
    rcpt = await c.command(f"RCPT TO:<SMS={to}@eu.rsms.net>{rcpt_args}")
    assert rcpt.startswith("250"), rcpt
    await c.command("DATA")
    await c.send(b"Subject: alarm\r\nMessage-ID: <m1@sap.example>\r\n\r\n" + body + b"\r\n.\r\n")
    reply = await c.read_reply()
    await c.close()
    return reply


def _notices(tmp_path: Path, kind: str) -> int:
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        return int(
            conn.execute("SELECT count(*) FROM notice WHERE kind = ?", (kind,)).fetchone()[0]
        )


def _order_status(tmp_path: Path) -> str:
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        row = conn.execute('SELECT status FROM "order"').fetchone()
    return str(row[0]) if row else ""


def _reports(messages: Sequence[Message]) -> list[Message]:
    return [m for m in messages if m.get_content_type() == "multipart/report"]


def _status_fields(dsn: Message) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in dsn.walk():
        if part.get_content_type() == "message/delivery-status":
            for block in part.get_payload():
                assert isinstance(block, Message)
                fields.update(block.items())
    return fields


def _plain(tmp_path: Path, relay_port: int, **sandbox: Any) -> Settings:
    s = _sap_settings(tmp_path, relay_port, trustme.CA(), **sandbox)
    return s.model_copy(
        update={"smtp": s.smtp.model_copy(update={"plaintext_networks": ("127.0.0.0/8",)})}
    )


@pytest.mark.parametrize(
    ("receipt", "notify", "expected"),
    [
        ("failed", " NOTIFY=FAILURE", ("failed", "5.0.0")),
        ("delivered", " NOTIFY=FAILURE", None),
        ("failed", " NOTIFY=NEVER", None),
        # No NOTIFY (a release that sends none, or a relay that dropped it): the example's
        # policy (notify_channel dsn, notify all) gives a DSN for every final status.
        ("delivered", "", ("delivered", "2.0.0")),
        ("failed", "", ("failed", "5.0.0")),
    ],
)
async def test_notify_is_honoured(
    tmp_path: Path, receipt: str, notify: str, expected: tuple[str, str] | None
) -> None:
    async with smtp_sink() as (sink, port):
        async with running_bridge(_plain(tmp_path, port, receipt=receipt)) as (_, ep):
            assert (await _send(ep.smtp[1], " ENVID=E1", notify)).startswith("250")
            # The DSN notice, if any, is queued in the commit that makes the order final.
            await wait_for(lambda: _order_status(tmp_path) in ("delivered", "undeliverable"), 10)
            if expected is None:
                assert _notices(tmp_path, "dsn") == 0
                assert _notices(tmp_path, "status") == 0  # SAP reads DSNs, no HTML mail
                return
            [dsn] = await wait_for(lambda: _reports(sink.messages()), within=10)
    assert not [m for m in sink.messages() if m.get_content_type() == "multipart/alternative"]
    envelope = [e for e in sink.envelopes if e.mail_from == "<>" or e.mail_from == ""]
    assert envelope, "a DSN comes from the null sender"
    fields = _status_fields(dsn)
    assert (fields["Action"], fields["Status"]) == expected
    assert fields["Diagnostic-Code"].startswith("X-SMPP;")
    assert fields["Original-Envelope-Id"] == "E1"


@pytest.mark.parametrize(
    ("fail", "status", "diagnostic"),
    [
        # submit_sm refused with ESME_RINVDSTADR: the SMSC knows no such number
        (
            "rejected",
            "5.1.1",
            "X-SMPP; submit_sm refused with ESME_RINVDSTADR (0x0B): "
            "the SMSC does not know the recipient's number",
        ),
        # accepted, then an EXPIRED receipt: delivery time expired
        (
            "expired",
            "5.4.7",
            "X-SMPP; delivery receipt stat:EXPIRED err:000: the phone was not reached in time",
        ),
        # an UNDELIV receipt says no more than that
        (
            "undeliverable",
            "5.0.0",
            "X-SMPP; delivery receipt stat:UNDELIV err:001: the network could not deliver it",
        ),
    ],
)
async def test_failure_dsn_status_follows_the_cause(
    tmp_path: Path, fail: str, status: str, diagnostic: str
) -> None:
    """The SMSC (the sandbox, over SMPP) refuses the number or reports the SMS expired:
    the DSN's Status says which (RFC 3463), and its Diagnostic-Code names the SMPP error."""
    rule = SandboxRuleSettings.model_validate({"number": "+491701234567", "fail": fail})
    async with smtp_sink() as (sink, port):
        async with running_bridge(_plain(tmp_path, port, rules=(rule,))) as (_, ep):
            assert (await _send(ep.smtp[1], " ENVID=E1", " NOTIFY=FAILURE")).startswith("250")
            [dsn] = await wait_for(lambda: _reports(sink.messages()), within=10)
    fields = _status_fields(dsn)
    assert (fields["Action"], fields["Status"]) == ("failed", status)
    assert fields["Diagnostic-Code"] == diagnostic


async def test_an_order_the_operator_refuses_gets_5_7_1(tmp_path: Path) -> None:
    """A failure of our own: the velocity check holds the mail to a second number under
    one prefix, the operator refuses it (`mailsms held refuse`): the DSN says 5.7.1,
    delivery not authorized, with our reason."""
    async with smtp_sink() as (sink, port):
        async with running_bridge(_plain(tmp_path, port)) as (bridge, ep):
            assert bridge.store is not None
            engine = bridge.store.engine
            run_sync(engine, set_access, "demo", {"velocity_numbers": 1})
            for number in ("+491701234567", "+491701234568"):
                reply = await _send(ep.smtp[1], "", " NOTIFY=FAILURE", to=number)
                assert reply.startswith("250"), reply
            [held] = [r["id"] for r in run_sync(engine, held_orders)]
            assert run_sync(engine, refuse_orders, [held], utcnow(), steps=STEPS) == 1
            [dsn] = await wait_for(lambda: _reports(sink.messages()), within=10)
    fields = _status_fields(dsn)
    assert (fields["Action"], fields["Status"]) == ("failed", "5.7.1")
    assert fields["Final-Recipient"] == "rfc822; SMS=+491701234568@eu.rsms.net"
    assert fields["Diagnostic-Code"] == (
        "X-SMPP; refused by the operator (SMS pumping suspected); not sent"
    )


async def test_ret_full_returns_the_whole_mail(tmp_path: Path) -> None:
    async with smtp_sink() as (sink, port):
        async with running_bridge(_plain(tmp_path, port)) as (_, ep):
            await _send(ep.smtp[1], " RET=FULL", " NOTIFY=SUCCESS", body=b"Pump P-101 alarm")
            [dsn] = await wait_for(lambda: _reports(sink.messages()), within=10)
    original = dsn.get_payload()[2]
    assert original.get_content_type() == "message/rfc822"
    assert "Pump P-101 alarm" in original.get_payload()[0].get_content()


async def test_delay_dsn_when_the_smsc_is_unreachable(tmp_path: Path) -> None:
    async with smtp_sink() as (sink, port):
        settings = _plain(tmp_path, port)
        settings = settings.model_copy(
            update={
                "sandbox": settings.sandbox.model_copy(update={"enabled": False}),
                "smsc": (settings.smsc[0].model_copy(update={"port": 1}),),
                "smtp": settings.smtp.model_copy(update={"dsn_delay_after": 0.01}),
            }
        )
        async with running_bridge(settings) as (bridge, ep):
            await _send(ep.smtp[1], "", " NOTIFY=DELAY,FAILURE")
            await wait_for(lambda: _order_status(tmp_path) == "deferred", within=15)
            bridge.workers["delay-dsn"].wake()
            [dsn] = await wait_for(lambda: _reports(sink.messages()), within=10)
    fields = _status_fields(dsn)
    assert (fields["Action"], fields["Status"]) == ("delayed", "4.4.7")
    assert "Delay" in dsn["Subject"]
