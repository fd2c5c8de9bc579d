"""A real MTA in front of the bridge, as a company's is: a throwaway Postfix relays the
bridge's domain to our listener. A 48 KB mail as Outlook sends it (a style sheet of
dot-led lines) becomes the SMS it says; a recipient the bridge refuses with 550 is
bounced by Postfix at once with our reply, not deferred and retried; and the status mail
goes back through the same Postfix (the mailer's relay) to the sender's domain."""

from __future__ import annotations

import os
import re
import smtplib
import sqlite3
from email.message import Message
from pathlib import Path
from typing import cast

import pytest

from tests.conftest import make_settings
from tests.helpers import make_mail, outlook_mail, running_bridge, smtp_sink, wait_for
from tests.peers.net import free_port
from tests.peers.postfix import NOT_ROOT, throwaway_postfix

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason=NOT_ROOT)
DOMAIN = "eu.rsms.net"


def _texts(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute('SELECT recipient, text FROM "order"').fetchall())


def _sent(log: str, count: int) -> list[str]:
    """The recipients the log says were sent, once it names `count` of them."""
    sent = re.findall(r"to=<([^>]+)>, relay=127\.0\.0\.1\S*, .*status=sent", log)
    return sent if len(sent) >= count else []


def _send(port: int, rcpt: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail("demo@example.com", [rcpt], raw)  # Postfix takes it for relaying


async def test_postfix_relays_an_outlook_mail_and_bounces_our_550(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        with throwaway_postfix({DOMAIN: ep.smtp[1]}) as postfix:
            _send(postfix.port, f"+491701230003@{DOMAIN}", outlook_mail())
            texts = await wait_for(lambda: _texts(tmp_path / "bridge.db"), 30)
            assert texts == {"+491701230003": "Pump P-101 pressure high, please check.\n.\n.."}
            # postlogd writes the line after Postfix saw our 250, maybe after our commit
            await wait_for(
                lambda: re.search(r"status=sent \(250 2\.0\.0 Ok: queued as \w+", postfix.log()),
                30,
            )

            _send(postfix.port, f"+4930123456@{DOMAIN}", b"Subject: landline\r\n\r\nhello\r\n")
            bounced = await wait_for(
                lambda: re.search(
                    r"to=<\+4930123456@eu\.rsms\.net>.*status=(\w+) (.*)", postfix.log()
                ),
                30,
            )
            assert bounced[1] == "bounced", postfix.log()[-2000:]
            assert "550 5.1.3" in bounced[2] and "landline number" in bounced[2]
    assert set(_texts(tmp_path / "bridge.db")) == {"+491701230003"}


async def test_the_status_mail_goes_back_through_postfix(tmp_path: Path) -> None:
    postfix_port = free_port()  # the mailer's relay, known before the bridge starts
    async with smtp_sink() as (sink, sink_port):
        settings = make_settings(tmp_path)
        mailer = settings.mailer.model_copy(update={"mode": "smtp", "relay_port": postfix_port})
        async with running_bridge(settings.model_copy(update={"mailer": mailer})) as (_, ep):
            routes = {DOMAIN: ep.smtp[1], "example.com": sink_port}
            with throwaway_postfix(routes, port=postfix_port) as postfix:
                rcpt = f"+491701230004@{DOMAIN}"
                _send(postfix.port, rcpt, make_mail(to=rcpt, message_id="<via-mta@client.example>"))
                await wait_for(lambda: sink.envelopes, 30)
                [envelope] = sink.envelopes
                assert envelope.rcpt_tos == ["demo@example.com"]
                [status] = sink.messages()
                assert status["In-Reply-To"] == "<via-mta@client.example>"
                assert "delivered" in status["Subject"], status["Subject"]
                sent = await wait_for(lambda: _sent(postfix.log(), 2), 30)
                assert sorted(sent) == ["+491701230004@eu.rsms.net", "demo@example.com"]


def _report_fields(report: Message) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in report.walk():
        if part.get_content_type() == "message/delivery-status":
            for block in cast("list[Message]", part.get_payload()):
                fields.update(block.items())
    return fields


@pytest.mark.parametrize("notify", [True, False])
async def test_a_sap_dsn_request_passes_postfix_and_only_our_dsn_comes_back(
    tmp_path: Path, notify: bool
) -> None:
    """SAP → the company's Postfix → the bridge, the DSN back the same way, as the SAP
    example sets it up (`notify_channel = ["dsn"]`). Postfix hands NOTIFY, ORCPT, ENVID
    and RET on to a next hop that offers DSN, and adds an ORCPT of its own when the
    client gave none: the DSN names the `SMS=` address as SAP wrote it, and Postfix sends
    no `relayed` report of its own beside ours."""
    postfix_port = free_port()
    rcpt = f"SMS=+491701230005@{DOMAIN}"
    async with smtp_sink() as (sink, sink_port):
        settings = make_settings(tmp_path)
        mailer = settings.mailer.model_copy(update={"mode": "smtp", "relay_port": postfix_port})
        defaults = settings.defaults.model_copy(
            update={"notify_channel": ("dsn",), "notify": "all"}
        )
        settings = settings.model_copy(update={"mailer": mailer, "defaults": defaults})
        async with running_bridge(settings) as (_, ep):
            routes = {DOMAIN: ep.smtp[1], "example.com": sink_port}
            with throwaway_postfix(routes, port=postfix_port) as postfix:
                with smtplib.SMTP("127.0.0.1", postfix.port, timeout=10) as smtp:
                    smtp.sendmail(
                        "demo@example.com",
                        [rcpt],
                        make_mail(to=rcpt, message_id="<4711@sap.example>"),
                        mail_options=["RET=HDRS", "ENVID=SAP4711"] if notify else [],
                        rcpt_options=(
                            [
                                "NOTIFY=SUCCESS,FAILURE",
                                "ORCPT=rfc822;SMS+3D+2B491701230005@eu.rsms.net",
                            ]
                            if notify
                            else []
                        ),
                    )
                await wait_for(lambda: sink.envelopes, 30)
                sent = await wait_for(lambda: _sent(postfix.log(), 2), 30)
                assert sorted(sent) == ["SMS=+491701230005@eu.rsms.net", "demo@example.com"]
    [envelope] = sink.envelopes
    assert envelope.mail_from in ("", "<>") and envelope.rcpt_tos == ["demo@example.com"]
    [dsn] = sink.messages()  # ours only: Postfix relayed to a DSN-capable next hop
    assert dsn.get_content_type() == "multipart/report"
    assert dsn["In-Reply-To"] == "<4711@sap.example>"
    fields = _report_fields(dsn)
    assert fields["Action"] == "delivered" and fields["Status"] == "2.0.0"
    assert fields["Final-Recipient"] == f"rfc822; {rcpt}"
    assert fields["Original-Recipient"] == f"rfc822;{rcpt}"  # Postfix's own ORCPT, too
    assert fields.get("Original-Envelope-Id") == ("SAP4711" if notify else None)
