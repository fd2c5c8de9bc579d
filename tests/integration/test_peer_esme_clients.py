"""The ESME client drivers (smpp34, smpplib, node-smpp) against an SMPP server: the sandbox SMSC.

Each driver binds, submits short, long (pre-split with UDH) and UCS-2 texts, receives
delivery receipts and MO as deliver_sm and answers them, sends enquire_link and unbind —
each checked on both ends: what the driver reports, what the sandbox received (its phone
inbox, its deliver_sm_resp statuses) and, through a wire tap, what went over TCP.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.sandbox.smsc import SandboxConfig, SandboxSmsc, read_inbox, send_mo
from tests.peers.esme import BindType, EsmeDriver, Unsupported, until
from tests.peers.esme_clients import CLIENTS, open_esme
from tests.peers.smpp_tap import SmppTap, tapped

PHONE = "+491701234567"
SENDER = "Bridge"
ESME_ROK = 0x00
ESME_RINVPASWD = 0x0E
ESME_RX_T_APPN = 0x64
LONG_GSM = "Lager {Nord}: Lieferung 4711 kommt morgen um 9 Uhr, bitte Rampe 3 freihalten. " * 4
LONG_UCS2 = "Привет из Центра 😀 — ваш заказ 4711 готов к выдаче. " * 3

pytestmark = pytest.mark.parametrize("client", CLIENTS)


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[SandboxSmsc]:
    smsc = SandboxSmsc(
        SandboxConfig(
            inbox_path=tmp_path / "inbox.jsonl",
            port=0,
            receipt_delay=0.05,
            redeliver_delay=0.2,
            redeliver_attempts=20,
        )
    )
    await smsc.start()
    yield smsc
    await smsc.stop()


@pytest.fixture
async def tap(sandbox: SandboxSmsc) -> AsyncIterator[SmppTap]:
    async with tapped("127.0.0.1", sandbox.port) as t:
        yield t


@pytest.fixture
async def esme(client: str, tap: SmppTap) -> AsyncIterator[EsmeDriver]:
    async with open_esme(client, "127.0.0.1", tap.port) as driver:
        yield driver


async def _bound(esme: EsmeDriver, sandbox: SandboxSmsc, kind: BindType) -> None:
    result = await esme.bind(kind, sandbox.config.system_id, sandbox.config.password)
    assert result.ok, result


async def test_bind_with_wrong_then_right_password(
    client: str, esme: EsmeDriver, sandbox: SandboxSmsc, tap: SmppTap
) -> None:
    refused = await esme.bind(BindType.TRANSCEIVER, sandbox.config.system_id, "wrong")
    assert not refused.ok
    # smpp34 reads a refused bind_resp as no answer; the others report its status.
    assert refused.status == (None if client == "smpp34" else ESME_RINVPASWD), refused
    assert [f.split(" ")[:2] for f in sandbox.bind_failures] == [["bridge:", "ESME_RINVPASWD"]]
    resp = tap.seen("bind_transceiver_resp", "to_client")
    assert [p.status for p in resp] == [ESME_RINVPASWD]

    await _bound(esme, sandbox, BindType.TRANSCEIVER)
    await tap.wait_until(lambda: len(tap.seen("bind_transceiver_resp")) == 2)
    assert tap.seen("bind_transceiver_resp")[-1].status == ESME_ROK


async def test_submit_short_long_and_ucs2_with_receipts(
    esme: EsmeDriver, sandbox: SandboxSmsc, tap: SmppTap
) -> None:
    await _bound(esme, sandbox, BindType.TRANSCEIVER)
    texts = [("hello", False), (LONG_GSM, False), ("Привет 😀", True), (LONG_UCS2, True)]
    sent = [await esme.submit(SENDER, PHONE, text, ucs2=ucs2) for text, ucs2 in texts]

    assert [len(parts) for parts in sent] == [1, 3, 1, 3]
    assert all(p.status == ESME_ROK and p.message_id for parts in sent for p in parts)
    await sandbox.wait_until(lambda: len(sandbox.delivered) == len(texts))
    phone = read_inbox(sandbox.config.inbox_path, to=PHONE)
    assert [(s.text, s.parts, s.encoding, s.source) for s in phone] == [
        ("hello", 1, "gsm7", SENDER),
        (LONG_GSM, 3, "gsm7", SENDER),
        ("Привет 😀", 1, "ucs2", SENDER),
        (LONG_UCS2, 3, "ucs2", SENDER),
    ]
    assert [s.message_ids for s in phone] == [tuple(p.message_id for p in ps) for ps in sent]

    # One receipt per part, for the id the client was given, each answered ESME_ROK.
    ids = {p.message_id for parts in sent for p in parts}
    await sandbox.wait_until(lambda: len(sandbox.deliver_statuses) == len(ids))
    assert sandbox.deliver_statuses == [ESME_ROK] * len(ids)
    await until(lambda: len(esme.deliveries) == len(ids))
    receipts = [d for d in esme.deliveries if d.is_receipt]
    assert {r.receipted_message_id for r in receipts} == ids
    assert all(r.answered in (ESME_ROK, None) for r in receipts)  # None: smpp34 acks itself
    assert all("stat:DELIVRD" in r.text for r in receipts)
    assert [p.status for p in tap.seen("deliver_sm_resp", "to_server")] == [ESME_ROK] * len(ids)
    report = json.loads(json.dumps(esme.report()))
    assert len(report["deliveries"]) == len(ids)


async def test_mo_arrives_as_deliver_sm(esme: EsmeDriver, sandbox: SandboxSmsc) -> None:
    await _bound(esme, sandbox, BindType.TRANSCEIVER)
    long_mo = "Bitte rufen Sie mich an, es geht um den Auftrag 4711. " * 6  # 3 parts
    path = sandbox.config.inbox_path
    await send_mo("127.0.0.1", sandbox.port, PHONE, "+4930123456", "Ja 👍", path)
    await send_mo("127.0.0.1", sandbox.port, PHONE, "12345", long_mo, path)
    assert sandbox.deliver_statuses == [ESME_ROK] * 4

    await until(lambda: len(esme.deliveries) == 4)
    mo = [d for d in esme.deliveries if not d.is_receipt]
    assert [(d.source, d.destination) for d in mo] == [("491701234567", "4930123456")] + [
        ("491701234567", "12345")
    ] * 3
    assert mo[0].text == "Ja 👍" and mo[0].data_coding == 0x08 and not mo[0].udh
    parts = mo[1:]
    assert [d.udh[-2:] for d in parts] == [bytes((3, 1)), bytes((3, 2)), bytes((3, 3))]
    assert "".join(d.text for d in parts) == long_mo


async def test_transmitter_submits_and_receiver_gets_the_receipt(
    client: str, esme: EsmeDriver, sandbox: SandboxSmsc, tap: SmppTap
) -> None:
    await _bound(esme, sandbox, BindType.TRANSMITTER)
    async with open_esme(client, "127.0.0.1", tap.port) as receiver:
        await _bound(receiver, sandbox, BindType.RECEIVER)
        [part] = await esme.submit(SENDER, PHONE, "via the transmitter")
        await sandbox.wait_until(lambda: len(sandbox.deliver_statuses) == 1)
        assert sandbox.deliver_statuses == [ESME_ROK]
        await until(lambda: receiver.deliveries)
        assert [d.receipted_message_id for d in receiver.deliveries] == [part.message_id]
        assert esme.deliveries == []
    assert [p.command for p in tap.pdus if p.command.startswith("bind_")][:2] == [
        "bind_transmitter",
        "bind_transmitter_resp",
    ]
    assert len(tap.seen("bind_receiver_resp")) == 1


async def test_enquire_link_and_unbind(
    client: str, esme: EsmeDriver, sandbox: SandboxSmsc, tap: SmppTap
) -> None:
    await _bound(esme, sandbox, BindType.TRANSCEIVER)
    if client == "smpp34":
        assert await esme.enquire_link() is None  # no call for it: its core keeps the line
    else:
        assert await esme.enquire_link() == ESME_ROK
        assert [p.status for p in tap.seen("enquire_link_resp", "to_client")] == [ESME_ROK]
    unbound = await esme.unbind()
    assert unbound == (None if client == "smpp34" else ESME_ROK)
    await tap.wait_until(lambda: tap.seen("unbind_resp", "to_client"))
    assert [p.status for p in tap.seen("unbind_resp")] == [ESME_ROK]


async def test_deliver_sm_answered_with_an_error_is_offered_again(
    client: str, esme: EsmeDriver, sandbox: SandboxSmsc
) -> None:
    await _bound(esme, sandbox, BindType.TRANSCEIVER)
    if client == "smpp34":
        with pytest.raises(Unsupported):
            await esme.answer_deliveries_with(ESME_RX_T_APPN)
        return
    await esme.answer_deliveries_with(ESME_RX_T_APPN)
    [part] = await esme.submit(SENDER, PHONE, "receipt refused first")
    await sandbox.wait_until(lambda: sandbox.deliver_statuses.count(ESME_RX_T_APPN) >= 2)
    await esme.answer_deliveries_with(ESME_ROK)
    await sandbox.wait_until(lambda: ESME_ROK in sandbox.deliver_statuses)
    await until(lambda: any(d.answered == ESME_ROK for d in esme.deliveries))
    answered = [d.answered for d in esme.deliveries]
    assert answered[-1] == ESME_ROK and answered.count(ESME_RX_T_APPN) >= 2
    assert {d.receipted_message_id for d in esme.deliveries} == {part.message_id}
