"""Reading a submit_sm as sent (pure): SMPP times, parts with UDH or SAR, sender ids, receipts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.smpp import constants as c
from bridge.smpp.pdu import SubmitSm, Tlv
from bridge.smpp_outbox.queue import receipt_pdu, wants_receipt
from bridge.smpp_server.submit import SubmitRefused, read_part, sender_allowed, smpp_time

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_smpp_times() -> None:
    assert smpp_time("", NOW) is None
    assert smpp_time("000001000000000R", NOW) == NOW + timedelta(days=1)
    assert smpp_time("261202140000004+", NOW) == datetime(2026, 12, 2, 13, 0, tzinfo=UTC)
    assert smpp_time("261202140000000-", NOW) == datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        smpp_time("2612021400", NOW)


def test_parts_are_kept_as_sent() -> None:
    udh = bytes((5, 0, 3, 7, 2, 1))
    pdu = SubmitSm(1, "a", "491701234567", udh + b"Hello", esm_class=c.ESM_UDHI)
    read = read_part(pdu)
    assert read.part.short_message == udh + b"Hello" and read.part.text == "Hello"
    assert read.concat is not None and (read.concat.ref, read.concat.total) == (7, 2)
    ucs2 = SubmitSm(1, "a", "b", "Grüße".encode("utf-16-be"), data_coding=8)
    assert (read_part(ucs2).part.text, read_part(ucs2).part.encoding) == ("Grüße", "ucs2")
    sar = SubmitSm(
        1,
        "a",
        "b",
        b"x",
        tlvs=(
            Tlv(c.TLV_SAR_MSG_REF_NUM, b"\0\x09"),
            Tlv(c.TLV_SAR_TOTAL_SEGMENTS, b"\x03"),
            Tlv(c.TLV_SAR_SEGMENT_SEQNUM, b"\x02"),
        ),
    )
    assert read_part(sar).concat is not None
    payload = SubmitSm(1, "a", "b", tlvs=(Tlv(c.TLV_MESSAGE_PAYLOAD, b"long text"),))
    assert read_part(payload).payload and read_part(payload).part.text == "long text"


def test_bad_input_is_refused_with_a_status() -> None:
    with pytest.raises(SubmitRefused) as bad_udh:
        read_part(SubmitSm(1, "a", "b", bytes((9, 0, 3)), esm_class=c.ESM_UDHI))
    assert bad_udh.value.status == c.ESME_RINVESMCLASS
    both = SubmitSm(1, "a", "b", b"x", tlvs=(Tlv(c.TLV_MESSAGE_PAYLOAD, b"y"),))
    with pytest.raises(SubmitRefused) as twice:
        read_part(both)
    assert twice.value.status == c.ESME_RINVOPTPARAMVAL


def test_sender_ids() -> None:
    assert sender_allowed("ACME", ("*",), "+4915550000001")
    assert sender_allowed("+4915550000001", (), "+4915550000001")
    assert sender_allowed("4915550000001", (), "+4915550000001")
    assert sender_allowed("acme", ("ACME",), "X")
    assert not sender_allowed("OTHER", ("ACME",), "X")


def test_receipt_text_and_wish() -> None:
    smpp = {
        "system_id": "demo",
        "source": "ACME",
        "source_ton": 5,
        "source_npi": 0,
        "destination": "491701234567",
        "dest_ton": 1,
        "dest_npi": 1,
    }
    pdu = receipt_pdu(smpp, "ABC.1", "undeliverable", "hello", NOW, NOW)
    assert (pdu.source, pdu.destination, pdu.esm_class) == ("491701234567", "ACME", 0x04)
    assert pdu.short_message.startswith(b"id:ABC.1 sub:001 dlvrd:000 ")
    assert b"stat:UNDELIV" in pdu.short_message and pdu.short_message.endswith(b"text:hello")
    assert dict(pdu.tlvs) == {c.TLV_RECEIPTED_MESSAGE_ID: b"ABC.1\0", c.TLV_MESSAGE_STATE: b"\x05"}
    assert wants_receipt(1, "delivered") and not wants_receipt(0, "failed")
    assert wants_receipt(2, "failed") and not wants_receipt(2, "delivered")
