"""Control characters decoded from what peers send, on SQLite and on PostgreSQL.

PostgreSQL refuses to store a NUL in text. Before, a mail whose quoted-printable body or
RFC 2047 subject decoded to one was answered `451` there at every retry (the sender's
MTA tried for days, then bounced it), and an MO or a receipt with one would have been
refused to the SMSC, which sends it again; on SQLite the NUL, ESC and DEL went into the
SMS. Now every decoder drops control characters (bridge/text/controls.py), so the same
mail, MO and receipt go through on both databases, and a REST API parameter with one is
refused with a 400 naming it. The SMSC is the node-smpp peer (a peer we did not write),
the mail client aiosmtplib, the HTTP client httpx.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiosmtplib
import pytest

from bridge.app import Endpoints
from bridge.settings import Settings
from tests.e2e.one_smsc import settings_for
from tests.e2e.test_api import api
from tests.helpers import db_rows, running_bridge, wait_for
from tests.peers.node_smpp import NodeSmsc, running_node_smsc

PHONE = "+491701234567"
NUMBER = "4915550000001"  # the demo sender, as the SMSC writes it with TON 0
CONTROLS = {
    chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)]
}

# A mail as a client may write it: each control character is legal in its encoding.
MAIL = (
    b"From: demo@example.com\r\n"
    b"To: +491701234567@eu.rsms.net\r\n"
    b"Subject: =?utf-8?q?Status=00report=1B?=\r\n"
    b"X-SMS-Cost-Centre: =?utf-8?q?Vertrieb-S=C3=BCd=00?=\r\n"
    b"Message-ID: <ctl-1@client.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Meet at 5=00=01=1B=7F=C2=85 at the gate\r\n"
)


@pytest.fixture
async def node() -> AsyncIterator[NodeSmsc]:
    async with running_node_smsc() as peer:
        yield peer


def _settings(tmp_path: Path, node: NodeSmsc, database: str) -> Settings:
    return settings_for(tmp_path, node.port).model_copy(update={"database_url": database})


def _clean(value: object) -> bool:
    return not CONTROLS & set(str(value))


async def _send(ep: Endpoints) -> None:
    async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
        errors, reply = await smtp.sendmail("demo@example.com", [f"{PHONE}@eu.rsms.net"], MAIL)
    assert errors == {} and "queued as" in reply, (errors, reply)


async def test_a_mail_whose_text_decodes_to_control_characters_is_accepted_without_them(
    tmp_path: Path, node: NodeSmsc, bridge_database: str
) -> None:
    async with running_bridge(_settings(tmp_path, node, bridge_database)) as (_, ep):
        await _send(ep)  # before: 451 on PostgreSQL, every time
        await node.wait_until(lambda: len(node.submits) == 1)
    sent = str(node.submits[0]["short_message"]["message"])
    assert sent == "Meet at 5 at the gate" and node.submits[0]["data_coding"] == 0  # GSM-7
    [(subject, message_id)] = db_rows(bridge_database, "SELECT subject, message_id FROM mail")
    assert (subject, message_id) == ("Statusreport", "<ctl-1@client.example>")
    [(order_text, policy)] = db_rows(bridge_database, 'SELECT text, policy FROM "order"')
    assert order_text == "Meet at 5 at the gate"
    policy = json.loads(policy) if isinstance(policy, str) else policy  # SQLite: JSON text
    assert policy["cost_centre"] == "Vertrieb-Süd"  # the header's encoded word, decoded


async def test_an_mo_and_a_receipt_with_a_nul_are_stored_without_it(
    tmp_path: Path, node: NodeSmsc, bridge_database: str
) -> None:
    await node.set(receipts=False)
    async with running_bridge(_settings(tmp_path, node, bridge_database)) as (_, ep):
        await _send(ep)
        await node.wait_until(lambda: len(node.submits) == 1)
        [(smsc_id,)] = await wait_for(
            lambda: db_rows(bridge_database, "SELECT smsc_id FROM part"), within=10
        )
        receipt = f"id:{smsc_id} sub:001 dlvrd:001 submit date:2612041200 done date:2612041201"
        status = await node.deliver_sm(  # a receipt as a C string: a NUL at its end
            source_addr="491701234567",
            source_addr_ton=1,
            source_addr_npi=1,
            destination_addr=NUMBER,
            esm_class=0x04,
            data_coding=0,
            short_message={"hex": (receipt + " stat:DELIVRD err:000 text:Meet\0").encode().hex()},
        )
        assert status == 0  # before: refused on PostgreSQL, so the SMSC sends it again
        await wait_for(
            lambda: db_rows(bridge_database, "SELECT 1 FROM \"order\" WHERE status = 'delivered'"),
            within=10,
        )
        status = await node.deliver_sm(  # a UCS-2 MO with a NUL and an ESC in it
            source_addr="491701234567",
            source_addr_ton=1,
            source_addr_npi=1,
            destination_addr=NUMBER,
            data_coding=8,
            short_message={"hex": "Yes\0 3pm\x1b ✓".encode("utf-16-be").hex()},
        )
        assert status == 0
        [(mo_text,)] = await wait_for(
            lambda: db_rows(bridge_database, "SELECT text FROM inbound"), within=10
        )
    assert mo_text == "Yes 3pm ✓"
    [(raw,)] = db_rows(bridge_database, "SELECT raw FROM receipt")
    assert raw.endswith("text:Meet") and _clean(raw)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/messages?cost_centre=4711%00",
        "/api/v1/messages?user=a%1Bb@example.com",
        "/api/v1/messages/M1%00.1",
        "/api/v1/inbound?keyword=%00",
        "/api/v1/stoplist/%2B491701234567%00",
    ],
)
async def test_an_api_parameter_with_a_control_character_is_a_400_naming_it(
    tmp_path: Path, bridge_database: str, path: str
) -> None:
    """Before: on PostgreSQL a filter with a NUL reached the query and was a 503 ("try
    again later"), for ever."""
    async with api(tmp_path, database_url=bridge_database) as a:
        method = "DELETE" if "stoplist" in path else "GET"
        r = await a.http.request(method, path, headers=a.demo)
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert "control character U+00" in detail and "; remove it" in detail
