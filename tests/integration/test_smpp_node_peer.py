"""Our ESME against an SMSC we did not write: the npm `smpp` package (tests/peers/node_smpp).

node-smpp decodes what we send with its own codec (GSM 03.38, UCS-2, UDH) and sends
deliver_sm the way it encodes them: MO with every TON/NPI spelling of one number,
receipts, a text that only looks like a receipt, and alert_notification.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import pytest

from bridge.transports.smpp import SmppConfig, SmppTransport
from bridge.values import InboundSms, OutboundSms, ReceiptState
from tests.peers.node_smpp import NodeSmsc, mo, running_node_smsc
from tests.peers.smpp34_peer import RecordingInbox, bound_transport

pytestmark = pytest.mark.both_loops  # also on uvloop ([server] event_loop)

PHONE = "+491701234567"


def config(port: int, **kw: object) -> SmppConfig:
    base: dict[str, object] = {
        "name": "node",
        "host": "127.0.0.1",
        "port": port,
        "system_id": "bridge",
        "password": "pw",
        "reconnect_min": 0.05,
        "reconnect_max": 30.0,
        "response_timeout": 5.0,
        "stats_interval": 0.0,
        "country": "DE",
    }
    base.update(kw)
    return SmppConfig(**base)


@pytest.fixture
async def node() -> AsyncIterator[NodeSmsc]:
    async with running_node_smsc() as peer:
        yield peer


@pytest.fixture
async def bound(node: NodeSmsc) -> AsyncIterator[tuple[SmppTransport, RecordingInbox]]:
    async with bound_transport(config(node.port)) as bound:
        yield bound


async def test_bind_and_short_submit_decoded_by_node_smpp_with_its_receipt(
    node: NodeSmsc, bound: tuple[SmppTransport, RecordingInbox]
) -> None:
    transport, inbox = bound
    assert node.received("bind_transceiver")[0]["system_id"] == "bridge"
    text = "Meet @ 5, 10€ {ok}"
    result = await transport.submit(OutboundSms("o-1", PHONE, "Bridge", text, "gsm7"))
    [pdu] = node.submits
    assert pdu["short_message"]["message"] == text  # node-smpp's GSM 03.38 decoder agrees
    assert (pdu["destination_addr"], pdu["dest_addr_ton"], pdu["dest_addr_npi"]) == (
        "491701234567",
        1,
        1,
    )
    assert (pdu["source_addr"], pdu["source_addr_ton"]) == ("Bridge", 5)
    assert pdu["data_coding"] == 0 and pdu["registered_delivery"] == 1
    await inbox.wait_until(lambda: len(inbox.receipts) == 1)
    receipt = inbox.receipts[0]
    assert (receipt.message_id, receipt.state) == (result.message_ids[0], ReceiptState.DELIVERED)


async def test_long_gsm7_submit_is_three_udh_parts_node_smpp_joins(
    node: NodeSmsc, bound: tuple[SmppTransport, RecordingInbox]
) -> None:
    transport, _ = bound
    text = "".join(f"{i:03d} " for i in range(100))[:400]
    result = await transport.submit(OutboundSms("o-3", PHONE, "+4915550000001", text, "gsm7"))
    assert len(result.message_ids) == 3
    parts = node.submits
    assert [p["esm_class"] & 0x40 for p in parts] == [0x40] * 3
    ies = [[bytes.fromhex(ie["hex"]) for ie in p["short_message"]["udh"]] for p in parts]
    concat = [next(ie for ie in part if ie[0] == 0) for part in ies]  # IEI 0: 8-bit concat
    assert len({ie[2] for ie in concat}) == 1  # one reference
    assert [(ie[3], ie[4]) for ie in concat] == [(3, 1), (3, 2), (3, 3)]
    assert "".join(p["short_message"]["message"] for p in parts) == text
    assert parts[0]["source_addr"] == "4915550000001" and parts[0]["source_addr_ton"] == 1


async def test_ucs2_submit_decoded_by_node_smpp(
    node: NodeSmsc, bound: tuple[SmppTransport, RecordingInbox]
) -> None:
    transport, _ = bound
    text = "Привет 😀, ça va?"
    await transport.submit(OutboundSms("o-u", PHONE, "Bridge", text, "ucs2"))
    [pdu] = node.submits
    assert pdu["data_coding"] == 8
    assert pdu["short_message"]["message"] == text


@pytest.mark.parametrize(
    ("source", "ton"),
    [
        ("491701234567", 0),  # TON 0, international digits (the common case)
        ("00491701234567", 0),  # TON 0 with the international prefix
        ("+491701234567", 0),  # TON 0 with a plus
        ("01701234567", 0),  # TON 0, national with trunk prefix
        ("1701234567", 2),  # TON 2, national
        ("01701234567", 2),  # TON 2, national with trunk prefix
        ("491701234567", 1),  # TON 1
        ("00491701234567", 1),  # TON 1 with a leftover 00
    ],
)
async def test_mo_in_every_spelling_arrives_as_e164(
    node: NodeSmsc, bound: tuple[SmppTransport, RecordingInbox], source: str, ton: int
) -> None:
    _, inbox = bound
    assert await node.deliver_sm(**mo(source, ton, "Yes, 3pm")) == 0
    await inbox.wait_until(lambda: len(inbox.messages) == 1)
    sms = inbox.messages[0]
    assert (sms.source, sms.destination, sms.text) == (PHONE, "+4915550000001", "Yes, 3pm")


async def test_names_and_short_codes_stay_what_they_are(
    node: NodeSmsc, bound: tuple[SmppTransport, RecordingInbox]
) -> None:
    _, inbox = bound
    assert await node.deliver_sm(**mo("ACME", 5)) == 0
    assert await node.deliver_sm(**mo("49170", 5)) == 0  # digits, but TON 5: a name
    assert await node.deliver_sm(**mo("Info24", 0)) == 0  # a name with TON 0
    assert await node.deliver_sm(**mo("80888", 0)) == 0  # a short code
    await inbox.wait_until(lambda: len(inbox.messages) == 4)
    assert [m.source for m in inbox.messages] == ["ACME", "49170", "Info24", "80888"]


async def test_text_that_looks_like_a_receipt_is_an_sms(
    node: NodeSmsc, bound: tuple[SmppTransport, RecordingInbox]
) -> None:
    _, inbox = bound
    assert await node.deliver_sm(**mo("491701234567", 0, "ID: 4711 Stat: OK")) == 0
    assert await node.deliver_sm(**mo("491701234567", 0, "id:4712 stat:DELIVRD")) == 0
    await inbox.wait_until(lambda: len(inbox.messages) == 2)
    assert [m.text for m in inbox.messages] == ["ID: 4711 Stat: OK", "id:4712 stat:DELIVRD"]
    assert inbox.receipts == []  # this SMSC is not configured to send text receipts


async def test_text_receipts_when_configured_and_unmatched_ones_kept_as_sms(
    node: NodeSmsc,
) -> None:
    transport = SmppTransport(config(node.port, text_receipts=True))
    inbox = RecordingInbox(known_ids={"7001"})
    await transport.start(inbox)
    try:
        assert await transport.wait_bound(10.0)
        plain = "id:7001 sub:001 dlvrd:001 submit date:2611221200 done date:2611221201 stat:DELIVRD"
        assert await node.deliver_sm(**mo("491701234567", 0, plain)) == 0
        unknown = plain.replace("7001", "9999")
        assert await node.deliver_sm(**mo("491701234567", 0, unknown)) == 0
        assert await node.deliver_sm(**mo("491701234567", 0, "ID: 4711 Stat: OK")) == 0
        await inbox.wait_until(lambda: len(inbox.receipts) + len(inbox.messages) == 3)
        assert [(r.message_id, r.state) for r in inbox.receipts] == [
            ("7001", ReceiptState.DELIVERED)
        ]
        assert [m.text for m in inbox.messages] == [unknown, "ID: 4711 Stat: OK"]
        assert inbox.messages[0].source == PHONE
    finally:
        await transport.stop()


async def test_alert_notification_gets_no_response(
    node: NodeSmsc, bound: tuple[SmppTransport, RecordingInbox]
) -> None:
    _, inbox = bound
    seq = await node.send_only(
        "alert_notification",
        source_addr="491701234567",
        source_addr_ton=1,
        source_addr_npi=1,
        esme_addr="4915550000001",
        esme_addr_ton=1,
        esme_addr_npi=1,
        ms_availability_status=0,
    )
    # A later request and its response: anything we answered to the alert came before it.
    assert await node.deliver_sm(**mo("491701234567", 1, "after the alert")) == 0
    await inbox.wait_until(lambda: len(inbox.messages) == 1)
    responses = [e["pdu"] for e in node.events if e["event"] == "pdu"]
    responses = [p for p in responses if p["command_id"] & 0x80000000]
    assert node.received("generic_nack") == []
    assert [p["command"] for p in responses if p["sequence_number"] == seq] == []
    assert await transport_still_bound(node)


async def transport_still_bound(node: NodeSmsc) -> bool:
    reply = await node.request("enquire_link")
    return bool(reply["command"] == "enquire_link_resp" and reply["command_status"] == 0)


def _reconnect_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The waits the ESME logged before each reconnect, in order."""
    return [
        float(cast("tuple[float, ...]", r.args)[1])  # log.info(fmt, name, delay, error)
        for r in caplog.records
        if r.getMessage().startswith("node: reconnecting in")
    ]


async def test_backoff_starts_again_after_every_successful_bind(
    node: NodeSmsc, caplog: pytest.LogCaptureFixture
) -> None:
    """Six SMSC restarts in a row, each after a bind that worked (an SMS submitted on
    it): each reconnect waits reconnect_min, not 2**n times it."""
    caplog.set_level(logging.INFO, logger="bridge.smpp.esme")
    transport = SmppTransport(config(node.port, reconnect_min=0.05, reconnect_max=30.0))
    await transport.start(RecordingInbox())
    try:
        for n in range(1, 7):
            await node.wait_until(lambda n=n: node.binds == n, within=10)  # type: ignore[misc]
            assert await transport.wait_bound(10.0)
            await transport.submit(OutboundSms(f"o-{n}", PHONE, "Bridge", "Hi", "gsm7"))
            await node.drop()
        await node.wait_until(lambda: node.binds == 7, within=10)
    finally:
        await transport.stop()
    delays = _reconnect_delays(caplog)
    assert len(delays) >= 6
    assert max(delays) <= 0.05, delays


async def test_backoff_grows_when_the_smsc_drops_every_bind_at_once(
    node: NodeSmsc, caplog: pytest.LogCaptureFixture
) -> None:
    """An SMSC that accepts the bind and drops it at once (over its bind limit, a
    balancer with a dead backend): the waits grow as for a failed connection. Before,
    every accepted bind started the backoff again: a bind every reconnect_min for ever."""
    caplog.set_level(logging.INFO, logger="bridge.smpp.esme")
    transport = SmppTransport(config(node.port, reconnect_min=0.05, reconnect_max=30.0))
    await transport.start(RecordingInbox())
    try:
        for n in range(1, 6):
            await node.wait_until(lambda n=n: node.binds == n, within=10)  # type: ignore[misc]
            assert await transport.wait_bound(10.0)  # bound on our side too
            await node.drop()
        await node.wait_until(lambda: node.binds == 6, within=10)
    finally:
        await transport.stop()
    delays = _reconnect_delays(caplog)
    assert len(delays) == 5
    # within [d/2, d] for d = 0.05 * 2**attempt: the fifth is at least 0.4
    assert delays[4] >= 0.4, delays


@dataclass(eq=False)
class HeldInbox(RecordingInbox):
    """Stores an MO only once `release` is set (a commit under way meanwhile)."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_message(self, sms: InboundSms) -> None:
        self.entered.set()
        await self.release.wait()
        await super().on_message(sms)


def sent_by_us(node: NodeSmsc) -> list[str]:
    """The commands of the PDUs the bridge sent, in order."""
    return [str(e["pdu"]["command"]) for e in node.events if e["event"] == "pdu"]


async def test_an_mo_being_stored_when_the_smsc_unbinds_is_answered_before_unbind_resp(
    node: NodeSmsc,
) -> None:
    """An SMSC that unbinds (maintenance) right after a deliver_sm gets its
    deliver_sm_resp, then the unbind_resp: the MO was stored, and an SMSC never told so
    would deliver it again (a second mail)."""
    inbox = HeldInbox()
    transport = SmppTransport(config(node.port, reconnect_min=5.0))
    await transport.start(inbox)
    try:
        assert await transport.wait_bound(10.0)
        deliver = asyncio.create_task(node.deliver_sm(**mo("491701234567", 1, "stored once")))
        await asyncio.wait_for(inbox.entered.wait(), 10)
        await node.send_only("unbind")
        await asyncio.sleep(0.3)  # the unbind has arrived while the MO is being stored
        inbox.release.set()
        assert await deliver == 0
        await node.wait_until(lambda: "unbind_resp" in sent_by_us(node))
        sent = sent_by_us(node)
        assert sent.index("deliver_sm_resp") < sent.index("unbind_resp")
        assert [m.text for m in inbox.messages] == ["stored once"]
    finally:
        await transport.stop()


async def test_stop_answers_the_mo_being_stored_before_it_unbinds(node: NodeSmsc) -> None:
    inbox = HeldInbox()
    transport = SmppTransport(config(node.port))
    await transport.start(inbox)
    try:
        assert await transport.wait_bound(10.0)
        deliver = asyncio.create_task(node.deliver_sm(**mo("491701234567", 1, "stored once")))
        await asyncio.wait_for(inbox.entered.wait(), 10)
        stopping = asyncio.create_task(transport.stop())
        await asyncio.sleep(0.3)  # stopping while the MO is being stored
        inbox.release.set()
        await asyncio.wait_for(stopping, 10)
        assert await deliver == 0
        sent = sent_by_us(node)
        assert sent.index("deliver_sm_resp") < sent.index("unbind")
    finally:
        await transport.stop()
