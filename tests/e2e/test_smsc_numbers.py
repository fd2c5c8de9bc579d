"""The whole bridge against the node-smpp SMSC: numbers in every TON, text that looks like
a receipt, and the stop list, as an operator meets them with a real SMSC.

The SMSC (tests/peers/node_smpp) sends MO and receipts the way node-smpp encodes them;
the bridge runs on SQLite with the demo customer (sender +4915550000001, user
demo@example.com). Waits are conditions with deadlines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from bridge.app import Endpoints
from bridge.settings import Settings
from tests.e2e.one_smsc import rows, settings_for
from tests.helpers import maildir_messages, make_mail, running_bridge, wait_for
from tests.peers.node_smpp import NodeSmsc, running_node_smsc

PHONE = "+491701234567"
NUMBER = "4915550000001"  # the demo sender, as the SMSC writes it with TON 0


@pytest.fixture
async def node() -> AsyncIterator[NodeSmsc]:
    async with running_node_smsc() as peer:
        yield peer


async def mail(ep: Endpoints, to: str, body: str = "Can we meet tomorrow?") -> None:
    async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
        await smtp.sendmail("demo@example.com", [f"{to}@eu.rsms.net"], make_mail(body=body))


async def phone_says(node: NodeSmsc, text: str, source: str = "491701234567", ton: int = 0) -> None:
    status = await node.deliver_sm(
        source_addr=source,
        source_addr_ton=ton,
        source_addr_npi=1,
        destination_addr=NUMBER,
        dest_addr_ton=0,
        dest_addr_npi=1,
        data_coding=0,
        short_message=text,
    )
    assert status == 0


def sms2mail(settings: Settings, text: str) -> list[EmailMessage]:
    found = []
    for m in maildir_messages(settings.mailer.maildir):
        body = m.get_body(("plain",))
        if m["Reply-To"] and body is not None and text in body.get_content():
            found.append(m)
    return found


def submitted_texts(node: NodeSmsc) -> list[str]:
    return [str(p["short_message"]["message"]) for p in node.submits]


async def test_ton0_reply_reaches_its_user_and_ton0_stop_refuses_every_spelling(
    tmp_path: Path, node: NodeSmsc
) -> None:
    settings = settings_for(tmp_path, node.port)
    async with running_bridge(settings) as (_, ep):
        await mail(ep, PHONE)
        await node.wait_until(lambda: submitted_texts(node) == ["Can we meet tomorrow?"])
        await wait_for(lambda: rows(tmp_path, "SELECT 1 FROM reply_assignment"), within=10)
        await phone_says(node, "Yes, 3pm works")  # TON 0, international digits
        [answer] = await wait_for(lambda: sms2mail(settings, "Yes, 3pm works"), within=10)
        assert answer["To"].addresses[0].addr_spec == "demo@example.com"
        assert answer["Reply-To"] == f"{PHONE}@eu.rsms.net"
        assert answer["In-Reply-To"] == "<original-1@client.example>"

        await phone_says(node, "Stop")  # TON 0 again
        await node.wait_until(lambda: any("opted out" in t for t in submitted_texts(node)))
        assert rows(tmp_path, "SELECT msisdn FROM stop_entry") == [(PHONE,)]
        for spelling in (PHONE, "00491701234567", "491701234567", "01701234567"):
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
                await mail(ep, spelling, "are you there?")
            [(code, message)] = [(r.code, r.message) for r in refused.value.recipients]
            assert code == 550 and "5.7.1" in message and "opted out" in message, spelling
        assert not any("are you there" in t for t in submitted_texts(node))


async def test_an_sms_that_looks_like_a_receipt_reaches_the_mailbox(
    tmp_path: Path, node: NodeSmsc
) -> None:
    settings = settings_for(tmp_path, node.port)
    async with running_bridge(settings) as (_, ep):
        await mail(ep, PHONE)
        await wait_for(lambda: rows(tmp_path, "SELECT 1 FROM reply_assignment"), within=10)
        await phone_says(node, "ID: 4711 Stat: OK", ton=1)
        [answer] = await wait_for(lambda: sms2mail(settings, "ID: 4711 Stat: OK"), within=10)
        assert answer["To"].addresses[0].addr_spec == "demo@example.com"
    assert rows(tmp_path, "SELECT count(*) FROM receipt WHERE raw LIKE 'ID: 4711%'") == [(0,)]


async def test_text_receipts_apply_to_their_order_and_unmatched_ones_are_kept_as_sms(
    tmp_path: Path, node: NodeSmsc
) -> None:
    await node.set(receipts=False)  # this SMSC sends receipts as plain text instead
    settings = settings_for(tmp_path, node.port, text_receipts=True)
    async with running_bridge(settings) as (_, ep):
        await mail(ep, PHONE)
        await wait_for(lambda: rows(tmp_path, "SELECT smsc_id FROM part"), within=10)
        [(smsc_id,)] = rows(tmp_path, "SELECT smsc_id FROM part")
        receipt = (
            f"id:{smsc_id} sub:001 dlvrd:001 submit date:2611221200 "
            "done date:2611221201 stat:DELIVRD err:000 text:"
        )
        await phone_says(node, receipt, source="491701234567", ton=1)
        await wait_for(
            lambda: rows(tmp_path, 'SELECT status FROM "order"') == [("delivered",)], within=10
        )
        stray = "id:99999 sub:001 dlvrd:001 done date:2611221201 stat:DELIVRD err:000"
        await phone_says(node, stray)
        await wait_for(lambda: sms2mail(settings, stray), within=10)
    assert rows(tmp_path, "SELECT smsc_id FROM receipt") == [(str(smsc_id),)]
