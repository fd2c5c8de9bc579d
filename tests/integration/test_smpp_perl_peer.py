"""Our ESME against Perl's Net::SMPP as the SMSC (tests/peers/perl_smpp), a fourth codec.

Net::SMPP decodes our PDUs' headers, addresses and TLVs and leaves short_message as
octets; it encodes deliver_sm (MO with TON 0 / TON 2 / 00 / + sources, receipts) and
alert_notification its own way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bridge.transports.smpp import SmppConfig, SmppTransport
from bridge.values import OutboundSms, ReceiptState
from tests.peers.perl_smpp import PerlSmsc, running_perl_smsc
from tests.peers.smpp34_peer import RecordingInbox, bound_transport

PHONE = "+491701234567"


@pytest.fixture
async def perl() -> AsyncIterator[PerlSmsc]:
    async with running_perl_smsc() as peer:
        yield peer


@pytest.fixture
async def bound(perl: PerlSmsc) -> AsyncIterator[tuple[SmppTransport, RecordingInbox]]:
    config = SmppConfig(
        name="perl",
        host="127.0.0.1",
        port=perl.port,
        system_id="bridge",
        password="pw",
        reconnect_min=0.05,
        response_timeout=5.0,
        stats_interval=0.0,
        country="DE",
    )
    async with bound_transport(config) as bound:
        yield bound


async def test_submit_as_net_smpp_reads_it_and_its_receipt(
    perl: PerlSmsc, bound: tuple[SmppTransport, RecordingInbox]
) -> None:
    transport, inbox = bound
    assert perl.received("bind_transceiver")[0]["system_id"] == "bridge"
    result = await transport.submit(OutboundSms("o-1", PHONE, "Bridge", "Hi @ home", "gsm7"))
    await perl.wait_until(lambda: perl.submits)
    [pdu] = perl.submits
    assert (pdu["destination_addr"], pdu["dest_addr_ton"], pdu["dest_addr_npi"]) == (
        "491701234567",
        1,
        1,
    )
    assert (pdu["source_addr"], pdu["source_addr_ton"], pdu["data_coding"]) == ("Bridge", 5, 0)
    assert bytes.fromhex(pdu["short_message"]["hex"]) == b"Hi \x00 home"  # GSM-7 '@' is 0x00
    await inbox.wait_until(lambda: len(inbox.receipts) == 1)
    receipt = inbox.receipts[0]
    assert (receipt.message_id, receipt.state) == (result.message_ids[0], ReceiptState.DELIVERED)


async def test_ucs2_submit_octets(
    perl: PerlSmsc, bound: tuple[SmppTransport, RecordingInbox]
) -> None:
    transport, _ = bound
    await transport.submit(OutboundSms("o-u", PHONE, "Bridge", "Grüße 😀", "ucs2"))
    await perl.wait_until(lambda: perl.submits)
    [pdu] = perl.submits
    assert pdu["data_coding"] == 8
    assert bytes.fromhex(pdu["short_message"]["hex"]).decode("utf-16-be") == "Grüße 😀"


@pytest.mark.parametrize(
    ("source", "ton"),
    [("491701234567", 0), ("00491701234567", 0), ("+491701234567", 0), ("1701234567", 2)],
)
async def test_mo_from_net_smpp_in_any_ton_is_e164(
    perl: PerlSmsc, bound: tuple[SmppTransport, RecordingInbox], source: str, ton: int
) -> None:
    _, inbox = bound
    reply = await perl.request(
        "deliver_sm",
        source_addr=source,
        source_addr_ton=ton,
        source_addr_npi=1,
        destination_addr="4915550000001",
        dest_addr_ton=0,
        dest_addr_npi=1,
        short_message="ID: 4711 Stat: OK",
    )
    assert reply["command"] == "deliver_sm_resp" and reply["command_status"] == 0
    await inbox.wait_until(lambda: len(inbox.messages) == 1)
    sms = inbox.messages[0]
    assert (sms.source, sms.destination, sms.text) == (PHONE, "+4915550000001", "ID: 4711 Stat: OK")
    assert inbox.receipts == []


async def test_alert_notification_from_net_smpp_gets_no_response(
    perl: PerlSmsc, bound: tuple[SmppTransport, RecordingInbox]
) -> None:
    _, inbox = bound
    seq = await perl.send_only(
        "alert_notification",
        source_addr="491701234567",
        source_addr_ton=1,
        source_addr_npi=1,
        esme_addr="4915550000001",
        esme_addr_ton=1,
        esme_addr_npi=1,
    )
    # A later request handled like the alert would be: its answer comes after any for the alert.
    reply = await perl.request(
        "deliver_sm",
        source_addr="491701234567",
        source_addr_ton=1,
        destination_addr="4915550000001",
        short_message="back again",
    )
    assert reply["command"] == "deliver_sm_resp"
    responses = [e["pdu"] for e in perl.events if e["event"] == "pdu"]
    responses = [p for p in responses if p["command_id"] & 0x80000000]
    assert [p for p in responses if p["sequence_number"] == seq] == []
    assert perl.received("generic_nack") == []
    assert [m.text for m in inbox.messages] == ["back again"]
