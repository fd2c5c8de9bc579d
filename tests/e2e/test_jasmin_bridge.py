"""The whole bridge through an SMS gateway we did not write: mail → bridge → Jasmin
(tests/peers/jasmin.py) → the node-smpp SMSC, and back.

Jasmin answers every submit_sm at once with its own UUID, relays the SMSC's receipts late
(its DLR lookup retries) and in any order, with its own receipt text; a long mail's parts
each get their own id and receipt. The orders must still end `delivered`, each exactly
once, with the status mail the user asked for; a reply by SMS comes back through Jasmin's
MO route to the user who wrote, threaded to the mail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from bridge.settings import Settings
from tests.e2e.one_smsc import rows, settings_for
from tests.helpers import maildir_messages, make_mail, running_bridge, wait_for
from tests.peers.jasmin import PASSWORD, USERNAME, JasminStack, node_behind, throwaway_jasmin
from tests.peers.node_smpp import NodeSmsc

PHONE = "+491701234567"
LONG = " ".join(f"{i:03d}" for i in range(100))  # 399 characters: three GSM-7 parts


@pytest.fixture(scope="module")
def jasmin() -> Iterator[JasminStack]:
    with throwaway_jasmin() as stack:
        yield stack


@pytest.fixture
async def node(jasmin: JasminStack) -> AsyncIterator[NodeSmsc]:
    async with node_behind(jasmin) as peer:
        yield peer


def status_mails(settings: Settings, message_id: str) -> list[EmailMessage]:
    return [
        m
        for m in maildir_messages(settings.mailer.maildir)
        if m["In-Reply-To"] == message_id and not m["Reply-To"]
    ]


async def test_mails_through_jasmin_end_delivered_once_and_a_reply_comes_back(
    tmp_path: Path, jasmin: JasminStack, node: NodeSmsc
) -> None:
    settings = settings_for(
        tmp_path, jasmin.smpp_port, name="jasmin", system_id=USERNAME, password=PASSWORD
    )
    async with running_bridge(settings) as (_, ep):
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            for body, message_id in (("Short one", "<short@client>"), (LONG, "<long@client>")):
                raw = make_mail(to=f"{PHONE}@eu.rsms.net", body=body, message_id=message_id)
                await smtp.sendmail("demo@example.com", [f"{PHONE}@eu.rsms.net"], raw)

        await node.wait_until(lambda: len(node.submits) == 4, within=30)
        sent = [str(p["short_message"]["message"]) for p in node.submits]
        assert sent[0] == "Short one" and "".join(sent[1:]) == LONG
        # Jasmin's receipts come late and in any order; every order ends delivered
        await wait_for(
            lambda: (
                rows(tmp_path, 'SELECT status FROM "order" ORDER BY id')
                == [("delivered",), ("delivered",)]
            ),
            within=60,
        )
        ids = rows(tmp_path, "SELECT smsc_id FROM part ORDER BY id")
        assert len(ids) == 4 and len(set(ids)) == 4  # Jasmin's UUIDs, one per part
        assert all(len(str(i)) == 36 for (i,) in ids), ids
        assert rows(tmp_path, "SELECT count(*) FROM receipt") == [(4,)]
        for message_id in ("<short@client>", "<long@client>"):
            [status] = await wait_for(lambda m=message_id: status_mails(settings, m), within=20)  # type: ignore[misc]
            assert "delivered" in str(status["Subject"]), status["Subject"]

        # the phone answers; Jasmin's MO route brings it to the bridge, to the user who wrote
        answer = await node.deliver_sm(
            source_addr=PHONE.lstrip("+"),
            source_addr_ton=1,
            source_addr_npi=1,
            destination_addr="4915550000001",
            dest_addr_ton=1,
            dest_addr_npi=1,
            data_coding=0,
            short_message="Yes, 3pm works",
        )
        assert answer == 0

        def replies() -> list[EmailMessage]:
            return [
                m
                for m in maildir_messages(settings.mailer.maildir)
                if m["Reply-To"] == f"{PHONE}@eu.rsms.net"
            ]

        [reply] = await wait_for(replies, within=30)
        assert reply["To"].addresses[0].addr_spec == "demo@example.com"
        assert reply["In-Reply-To"] == "<long@client>"  # the last mail to that number
        body = reply.get_body(("plain",))
        assert body is not None and "Yes, 3pm works" in body.get_content()
    # still one receipt per part and one status mail per mail after the round trip
    assert rows(tmp_path, "SELECT count(*) FROM receipt") == [(4,)]
    assert len(status_mails(settings, "<short@client>")) == 1
    assert len(status_mails(settings, "<long@client>")) == 1
