"""Our ESME through an SMS gateway we did not write: Jasmin (tests/peers/jasmin.py).

SmppTransport binds to Jasmin's SMPP server as a Jasmin user; Jasmin's MT default route
hands every submit_sm to its SMPP client connector, bound to the node-smpp SMSC
(tests/peers/node_smpp), which reports what arrived and sends receipts; Jasmin relays the
receipts, and MO from the SMSC (MO default route), back to our bind.

What Jasmin (0.11.0) does that a hand-written SMSC does not, as observed here:

* It answers submit_sm at once, before the SMSC behind it has seen the message (store
  and forward over RabbitMQ), with its own id: a lower-case UUID4 (36 characters), one
  per part, never the SMSC's id ("7001"). Even while its connector to the SMSC is
  stopped it answers ESME_ROK; the message waits in RabbitMQ and goes out once the
  connector binds.
* Its receipt is a deliver_sm (esm_class 0x04, the message_state and receipted_message_id
  TLVs, the id NUL-terminated; data_coding 0; addresses swapped from our submit_sm)
  whose text is `id:<uuid> submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DELIVRD
  err:000`: no `sub:`, `dlvrd:` or `text:` fields, and both dates are Jasmin's own
  clock (when it took the submit_sm, when it relayed the receipt), not the SMSC's. The
  SMSC's `err:` is passed on. With `[dlr-thrower] dlr_pdu = data_sm` the receipt is a
  data_sm with the TLVs only, no text at all.
* A receipt that overtakes the SMSC's submit_sm_resp (as node-smpp's, sent right after
  it) is "DLRMapNotFound" at first and retried after `[dlr] dlr_lookup_retry_delay`
  (10 s by default, 1 s here): receipts come late and out of order (e.g. the last part's first).
* A long text's parts go downstream as they came (our UDH, reference and numbering),
  each with its own UUID and its own receipt.
* Addresses, TON/NPI, data_coding and the octets of short_message (GSM 03.38 with
  escapes, UCS-2 with surrogates) pass through unchanged both ways.
* jasmin 0.11.1 (the newest on PyPI) never relays receipts to SMPP users:
  its submit_sm_resp handler fails with "'SubmitSM' object has no attribute 'response'"
  (jookies/jasmin#1236), so 0.11.0 is pinned.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Protocol

import pytest

from bridge.transports.smpp import SmppConfig, SmppTransport
from bridge.values import OutboundSms, ReceiptState
from tests.peers.jasmin import (
    PASSWORD,
    USERNAME,
    JasminStack,
    connect_downstream,
    disconnect_downstream,
    node_behind,
    throwaway_jasmin,
)
from tests.peers.node_smpp import NodeSmsc, mo, running_node_smsc
from tests.peers.smpp34_peer import RecordingInbox, bound_transport

PHONE = "+491701234567"
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def config(port: int) -> SmppConfig:
    return SmppConfig(
        name="jasmin",
        host="127.0.0.1",
        port=port,
        system_id=USERNAME,
        password=PASSWORD,
        reconnect_min=0.05,
        reconnect_max=30.0,
        response_timeout=10.0,
        stats_interval=0.0,
        country="DE",
    )


class Waitable(Protocol):
    async def wait_until(self, predicate: Callable[[], bool], within: float = ...) -> None: ...


@pytest.fixture(scope="module")
def jasmin() -> Iterator[JasminStack]:
    with throwaway_jasmin() as stack:
        yield stack


@pytest.fixture
async def node(jasmin: JasminStack) -> AsyncIterator[NodeSmsc]:
    async with node_behind(jasmin) as peer:
        yield peer


@pytest.fixture
async def bound(
    jasmin: JasminStack, node: NodeSmsc
) -> AsyncIterator[tuple[SmppTransport, RecordingInbox]]:
    async with bound_transport(config(jasmin.smpp_port)) as bound:
        yield bound


async def wait(
    jasmin: JasminStack, peer: Waitable, predicate: Callable[[], bool], within: float = 20.0
) -> None:
    """Wait for a node/inbox condition; Jasmin's message log in the failure."""
    try:
        await peer.wait_until(predicate, within=within)
    except TimeoutError:
        pytest.fail(f"timed out; Jasmin's message log:\n{jasmin.log('messages')[-6000:]}")


def jasmin_receipt_text(
    message_id: str, stat: str = "DELIVRD", err: str = "000"
) -> re.Pattern[str]:
    return re.compile(
        rf"id:{message_id} submit date:\d{{10}} done date:\d{{10}} stat:{stat} err:{err}"
    )


async def test_gsm7_with_extension_characters_through_jasmin_and_its_receipt(
    jasmin: JasminStack, node: NodeSmsc, bound: tuple[SmppTransport, RecordingInbox]
) -> None:
    transport, inbox = bound
    text = "Meet @ 5, 10€ {ok} [x] ~ ^ \\ |"
    result = await transport.submit(OutboundSms("o-1", PHONE, "Bridge", text, "gsm7"))
    [jasmin_id] = result.message_ids
    assert UUID4.fullmatch(jasmin_id), jasmin_id  # Jasmin's id, not the SMSC's "7001"

    await wait(jasmin, node, lambda: len(node.submits) == 1)
    [pdu] = node.submits
    assert pdu["short_message"]["message"] == text  # node-smpp's GSM 03.38 decoder agrees
    assert (pdu["destination_addr"], pdu["dest_addr_ton"], pdu["dest_addr_npi"]) == (
        "491701234567",
        1,
        1,
    )
    assert (pdu["source_addr"], pdu["source_addr_ton"]) == ("Bridge", 5)
    assert (pdu["data_coding"], pdu["esm_class"], pdu["registered_delivery"]) == (0, 0, 1)

    await wait(jasmin, inbox, lambda: len(inbox.receipts) == 1)
    [receipt] = inbox.receipts
    assert (receipt.message_id, receipt.state) == (jasmin_id, ReceiptState.DELIVERED)
    assert receipt.error_code == "000"
    assert jasmin_receipt_text(jasmin_id).fullmatch(receipt.raw), receipt.raw
    # node-smpp's receipt said submit date:2611221200 done date:2611221201: Jasmin writes its own
    assert "2611221200" not in receipt.raw and "2611221201" not in receipt.raw
    assert inbox.messages == []


async def test_ucs2_through_jasmin(
    jasmin: JasminStack, node: NodeSmsc, bound: tuple[SmppTransport, RecordingInbox]
) -> None:
    transport, inbox = bound
    text = "Привет 😀, ça va?"
    result = await transport.submit(OutboundSms("o-u", PHONE, "Bridge", text, "ucs2"))
    await wait(jasmin, node, lambda: len(node.submits) == 1)
    [pdu] = node.submits
    assert pdu["data_coding"] == 8
    assert pdu["short_message"]["message"] == text
    assert pdu["destination_addr"] == "491701234567"
    await wait(jasmin, inbox, lambda: len(inbox.receipts) == 1)
    assert [(r.message_id, r.state) for r in inbox.receipts] == [
        (result.message_ids[0], ReceiptState.DELIVERED)
    ]


async def test_long_text_parts_pass_jasmin_each_with_its_id_and_receipt(
    jasmin: JasminStack, node: NodeSmsc, bound: tuple[SmppTransport, RecordingInbox]
) -> None:
    transport, inbox = bound
    text = "".join(f"{i:03d} " for i in range(100))[:400]
    result = await transport.submit(OutboundSms("o-3", PHONE, "+4915550000001", text, "gsm7"))
    assert len(result.message_ids) == 3
    assert len(set(result.message_ids)) == 3
    assert all(UUID4.fullmatch(i) for i in result.message_ids), result.message_ids

    await wait(jasmin, node, lambda: len(node.submits) == 3)
    parts = node.submits
    assert [p["esm_class"] & 0x40 for p in parts] == [0x40] * 3
    ies = [[bytes.fromhex(ie["hex"]) for ie in p["short_message"]["udh"]] for p in parts]
    concat = [next(ie for ie in part if ie[0] == 0) for part in ies]  # IEI 0: 8-bit concat
    assert len({ie[2] for ie in concat}) == 1  # one reference
    assert [(ie[3], ie[4]) for ie in concat] == [(3, 1), (3, 2), (3, 3)]
    assert "".join(p["short_message"]["message"] for p in parts) == text
    assert (parts[0]["source_addr"], parts[0]["source_addr_ton"]) == ("4915550000001", 1)
    assert all(p["destination_addr"] == "491701234567" for p in parts)

    # one receipt per part, each matched to its part's id (in whatever order Jasmin sends)
    await wait(jasmin, inbox, lambda: len(inbox.receipts) == 3)
    assert sorted(r.message_id for r in inbox.receipts) == sorted(result.message_ids)
    assert {r.state for r in inbox.receipts} == {ReceiptState.DELIVERED}


async def test_undeliverable_receipt_from_the_smsc_comes_back_undeliverable(
    jasmin: JasminStack, node: NodeSmsc, bound: tuple[SmppTransport, RecordingInbox]
) -> None:
    transport, inbox = bound
    await node.set(receipts=False)
    result = await transport.submit(OutboundSms("o-x", PHONE, "Bridge", "Hello", "gsm7"))
    await wait(jasmin, node, lambda: len(node.submits) == 1)
    status = await node.deliver_sm(
        source_addr="491701234567",
        source_addr_ton=1,
        source_addr_npi=1,
        destination_addr="Bridge",
        dest_addr_ton=5,
        dest_addr_npi=0,
        esm_class=0x04,
        data_coding=0,
        short_message="id:7001 sub:001 dlvrd:000 submit date:2611221200 "
        "done date:2611221201 stat:UNDELIV err:001 text:Hello",
        receipted_message_id="7001",
        message_state=5,
    )
    assert status == 0
    await wait(jasmin, inbox, lambda: len(inbox.receipts) == 1)
    [receipt] = inbox.receipts
    assert (receipt.message_id, receipt.state) == (
        result.message_ids[0],
        ReceiptState.UNDELIVERABLE,
    )
    assert jasmin_receipt_text(result.message_ids[0], "UNDELIV", "001").fullmatch(receipt.raw)
    assert inbox.messages == []


async def test_mo_through_jasmin_gsm7_and_ucs2(
    jasmin: JasminStack, node: NodeSmsc, bound: tuple[SmppTransport, RecordingInbox]
) -> None:
    _, inbox = bound
    assert await node.deliver_sm(**mo("491701234567", 0, "Yes, 3pm € {x}")) == 0
    await wait(jasmin, inbox, lambda: len(inbox.messages) == 1)
    assert await node.deliver_sm(**mo("491701234567", 1, "Привет 😀", data_coding=8)) == 0
    await wait(jasmin, inbox, lambda: len(inbox.messages) == 2)
    assert [(m.source, m.destination, m.text, m.encoding) for m in inbox.messages] == [
        (PHONE, "+4915550000001", "Yes, 3pm € {x}", "gsm7"),
        (PHONE, "+4915550000001", "Привет 😀", "ucs2"),
    ]
    assert [m.smsc_fields["source_ton"] for m in inbox.messages] == ["0", "1"]  # as sent
    assert inbox.receipts == []


async def test_long_mo_in_udh_parts_through_jasmin_is_reassembled(
    jasmin: JasminStack, node: NodeSmsc, bound: tuple[SmppTransport, RecordingInbox]
) -> None:
    _, inbox = bound
    first, second = "A" * 153, "and the rest"
    for n, text in ((1, first), (2, second)):
        part = {"udh_hex": f"05000342020{n}", "message": text}
        assert await node.deliver_sm(**mo("491701234567", 1, part, esm_class=0x40)) == 0
    await wait(jasmin, inbox, lambda: len(inbox.messages) == 1)
    [sms] = inbox.messages
    assert (sms.source, sms.text, sms.parts) == (PHONE, first + second, 2)


async def test_submit_is_answered_while_no_smsc_is_bound_and_sent_when_one_is(
    jasmin: JasminStack,
) -> None:
    """Store and forward: Jasmin's submit_sm_resp says nothing about the SMSC behind it."""
    async with (
        running_node_smsc() as node,
        bound_transport(config(jasmin.smpp_port)) as (transport, inbox),
    ):
        sms = OutboundSms("o-q", PHONE, "Bridge", "queued", "gsm7")
        result = await transport.submit(sms)  # the `down` connector is stopped
        assert UUID4.fullmatch(result.message_ids[0])
        assert node.binds == 0 and node.submits == []
        await asyncio.to_thread(connect_downstream, jasmin, node.port)
        try:
            await wait(jasmin, node, lambda: len(node.submits) == 1)
            assert node.submits[0]["short_message"]["message"] == "queued"
            await wait(jasmin, inbox, lambda: len(inbox.receipts) == 1)
            assert inbox.receipts[0].message_id == result.message_ids[0]
            assert inbox.receipts[0].state == ReceiptState.DELIVERED
        finally:
            await asyncio.to_thread(disconnect_downstream, jasmin)


@pytest.fixture
def jasmin_data_sm() -> Iterator[JasminStack]:
    with throwaway_jasmin(dlr_pdu="data_sm") as stack:
        yield stack


async def test_receipt_as_data_sm_with_only_tlvs(jasmin_data_sm: JasminStack) -> None:
    """Jasmin's `[dlr-thrower] dlr_pdu = data_sm`: the receipt is a data_sm with esm_class
    0x04, receipted_message_id and message_state, and no text at all."""
    jasmin = jasmin_data_sm
    async with (
        node_behind(jasmin) as node,
        bound_transport(config(jasmin.smpp_port)) as (transport, inbox),
    ):
        sms = OutboundSms("o-d", PHONE, "Bridge", "receipt as data_sm", "gsm7")
        result = await transport.submit(sms)
        await wait(jasmin, node, lambda: len(node.submits) == 1)
        await wait(jasmin, inbox, lambda: len(inbox.receipts) == 1)
        [receipt] = inbox.receipts
        assert (receipt.message_id, receipt.state) == (
            result.message_ids[0],
            ReceiptState.DELIVERED,
        )
        sent = jasmin.log("smpp-server")  # Jasmin logs every PDU it sends at DEBUG
        assert "Sending PDU: PDU [command: CommandId.data_sm" in sent
        assert "Sending PDU: PDU [command: CommandId.deliver_sm" not in sent
        assert inbox.messages == []
