"""What an SMPP client's message becomes upstream: the SMSC's own encoding settings.

A client (smpplib) submits to the bridge's SMPP server; the order goes on to an SMSC
(`FaultSmsc`) with its own `default_alphabet`, `gsm7_packed`, `concat` and
`max_short_message`. Text is encoded for that SMSC as a mail's text is; binary data goes
as the client sent it, its parts still concatenated. The order counts the parts the
SMSC got, ends delivered when their receipts come, and the client gets one receipt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge.smpp import constants as c
from bridge.smpp.encoding import EncodingOptions, plan_parts
from bridge.smpp.pdu import SubmitSm, find_tlv
from bridge.smpp.udh import find_concat, split_udh
from bridge.smpp_server.settings import SmppServerSettings
from bridge.text.gsm7 import decode_gsm7
from tests.e2e.one_smsc import rows, settings_for
from tests.helpers import running_bridge
from tests.peers.esme import BindType, until
from tests.peers.esme_smpplib import SmpplibEsme
from tests.peers.smpp_fault import FaultSmsc, running_fault_smsc

SENDER = "+4915550000001"
PHONE = "+491701234567"


def _concat(pdu: SubmitSm) -> tuple[int, int, int] | None:
    """(reference, total, seq) of a part the SMSC got, by UDH or sar_* TLVs."""
    if pdu.esm_class & c.ESM_UDHI:
        found = find_concat(split_udh(pdu.short_message)[0])
        return None if found is None else (found.ref, found.total, found.seq)
    total = find_tlv(pdu.tlvs, c.TLV_SAR_TOTAL_SEGMENTS)
    seq = find_tlv(pdu.tlvs, c.TLV_SAR_SEGMENT_SEQNUM)
    ref = find_tlv(pdu.tlvs, c.TLV_SAR_MSG_REF_NUM)
    if total is None or seq is None or ref is None:
        return None
    return int.from_bytes(ref, "big"), total[0], seq[0]


def _body(pdu: SubmitSm) -> bytes:
    sm = pdu.short_message
    return split_udh(sm)[1] if pdu.esm_class & c.ESM_UDHI else sm


async def _send(
    tmp_path: Path, smsc: FaultSmsc, settings: Any, submit: Any, parts: int
) -> list[SubmitSm]:
    """Submit through smpplib; the parts the SMSC got, once the order is final and the
    client has its receipt (DELIVRD)."""
    settings = settings.model_copy(update={"smpp_server": SmppServerSettings(enabled=True, port=0)})
    async with running_bridge(settings) as (_, ep):
        assert ep.smpp is not None
        await smsc.wait_until(lambda: smsc.binds >= 1)
        esme = SmpplibEsme(*ep.smpp)
        try:
            assert (await esme.bind(BindType.TRANSCEIVER, "demo", "demo")).ok
            results = await submit(esme)
            assert {r.status for r in results} == {0}
            assert len({r.message_id for r in results}) == 1  # one order
            await until(lambda: [d for d in esme.deliveries if d.is_receipt], within=15)
            [receipt] = [d for d in esme.deliveries if d.is_receipt]
            assert receipt.receipted_message_id == results[0].message_id
            assert b"stat:DELIVRD" in receipt.short_message
        finally:
            await esme.close()
        order = rows(tmp_path, 'SELECT status, parts FROM "order"')
        assert order == [("delivered", parts)], order
    assert len(smsc.submits) == parts
    return smsc.submits


@pytest.mark.parametrize("concat", ["udh8", "udh16", "sar"])
async def test_a_text_the_client_concatenated_by_sar_tlvs_stays_one_sms(
    tmp_path: Path, concat: str
) -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 5  # 225 septets: two parts
    async with running_fault_smsc() as smsc:
        settings = settings_for(tmp_path, smsc.port, concat=concat)

        async def submit(esme: SmpplibEsme) -> Any:
            return await esme.submit(SENDER, PHONE, text, sar_ref=0x2A)

        got = await _send(tmp_path, smsc, settings, submit, 2)
    found = [_concat(p) for p in got]
    assert [f[1:] for f in found if f] == [(2, 1), (2, 2)]
    assert found[0] is not None and found[1] is not None and found[0][0] == found[1][0]
    assert bool(got[0].esm_class & c.ESM_UDHI) == concat.startswith("udh")
    assert decode_gsm7(b"".join(_body(p) for p in got)) == text


@pytest.mark.parametrize(
    "smsc_settings",
    [{"default_alphabet": "latin1"}, {"default_alphabet": "ascii"}, {"gsm7_packed": True}],
)
async def test_the_clients_text_is_encoded_as_the_smsc_wants_it(
    tmp_path: Path, smsc_settings: dict[str, Any]
) -> None:
    text = "Price 5 EUR @ shop_1 {ok}"
    async with running_fault_smsc() as smsc:
        settings = settings_for(tmp_path, smsc.port, **smsc_settings)

        async def submit(esme: SmpplibEsme) -> Any:
            return await esme.submit(SENDER, PHONE, text)

        [got] = await _send(tmp_path, smsc, settings, submit, 1)
    opts = EncodingOptions(
        default_alphabet=smsc_settings.get("default_alphabet", "gsm7"),
        packed=smsc_settings.get("gsm7_packed", False),
    )
    [want] = plan_parts(text, "gsm7", opts)  # what a mail with this text gets
    assert (got.data_coding, got.short_message) == (want.data_coding, want.short_message)


async def test_a_text_over_the_smscs_size_cap_is_split_for_it(tmp_path: Path) -> None:
    text = "x" * 160  # one part of 160 octets from the client; this SMSC takes 140
    async with running_fault_smsc() as smsc:
        settings = settings_for(tmp_path, smsc.port, max_short_message=140)

        async def submit(esme: SmpplibEsme) -> Any:
            return await esme.submit(SENDER, PHONE, text)

        got = await _send(tmp_path, smsc, settings, submit, 2)
    assert all(len(p.short_message) <= 140 for p in got)
    assert decode_gsm7(b"".join(_body(p) for p in got)) == text


async def test_a_character_the_client_split_across_parts_reads_whole(tmp_path: Path) -> None:
    # smpplib splits UCS-2 every 134 octets: the emoji's surrogate pair falls in two parts
    text = "a" * 66 + "😀" + "b" * 40
    async with running_fault_smsc() as smsc:
        settings = settings_for(tmp_path, smsc.port, gsm7_packed=True)

        async def submit(esme: SmpplibEsme) -> Any:
            return await esme.submit(SENDER, PHONE, text, ucs2=True)

        got = await _send(tmp_path, smsc, settings, submit, 2)
        assert rows(tmp_path, 'SELECT text, encoding FROM "order"') == [(text, "ucs2")]
    assert b"".join(_body(p) for p in got).decode("utf-16-be") == text
    assert all(p.data_coding == 8 for p in got)


@pytest.mark.parametrize(
    ("concat", "ie_ref"), [("udh8", True), ("udh16", True), ("sar", False), ("payload", False)]
)
async def test_binary_parts_go_as_sent_still_concatenated(
    tmp_path: Path, concat: str, ie_ref: bool
) -> None:
    data = [bytes(range(120)), bytes(range(100, 160))]  # 8-bit data (data_coding 4)
    async with running_fault_smsc() as smsc:
        settings = settings_for(tmp_path, smsc.port, concat=concat)

        async def submit(esme: SmpplibEsme) -> Any:
            return await esme.submit_parts(SENDER, PHONE, data, 4, sar_ref=0x0107)

        got = await _send(tmp_path, smsc, settings, submit, 2)
    assert [p.data_coding for p in got] == [4, 4]
    assert [_body(p) for p in got] == data  # the octets as the client sent them
    found = [_concat(p) for p in got]
    assert [f[1:] for f in found if f] == [(2, 1), (2, 2)]
    assert found[0] is not None and found[1] is not None and found[0][0] == found[1][0]
    if ie_ref:  # this SMSC concatenates by UDH: every part has one, none the TLVs
        assert all(p.esm_class & c.ESM_UDHI for p in got)
        assert all(find_tlv(p.tlvs, c.TLV_SAR_TOTAL_SEGMENTS) is None for p in got)
    else:  # the client's TLVs, as sent
        assert found[0][0] == 0x0107
        assert not any(p.esm_class & c.ESM_UDHI for p in got)


async def test_binary_parts_too_long_for_a_udh_keep_their_sar_tlvs(tmp_path: Path) -> None:
    data = [bytes(140), bytes(10)]  # a UDH would not fit in the first part's 140 octets
    async with running_fault_smsc() as smsc:
        settings = settings_for(tmp_path, smsc.port)

        async def submit(esme: SmpplibEsme) -> Any:
            return await esme.submit_parts(SENDER, PHONE, data, 4, sar_ref=9)

        got = await _send(tmp_path, smsc, settings, submit, 2)
    assert [p.short_message for p in got] == data
    assert [_concat(p) for p in got] == [(9, 2, 1), (9, 2, 2)]
