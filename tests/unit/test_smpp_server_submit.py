"""Reading a submit_sm as sent (pure): SMPP times, parts with UDH or SAR, sender ids, receipts,
and what is refused at the door because it could only fail later or reach the handset
broken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.smpp import constants as c
from bridge.smpp.pdu import SubmitSm, Tlv
from bridge.smpp_outbox.queue import receipt_pdu, wants_receipt
from bridge.smpp_server.submit import (
    SubmitRefused,
    Window,
    delivery_window,
    message_receipt_wish,
    parts_needed,
    read_part,
    sender_allowed,
    sender_refused,
    smpp_time,
)

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


def _sar(ref: bytes, total: bytes, seq: bytes) -> tuple[Tlv, ...]:
    return (
        Tlv(c.TLV_SAR_MSG_REF_NUM, ref),
        Tlv(c.TLV_SAR_TOTAL_SEGMENTS, total),
        Tlv(c.TLV_SAR_SEGMENT_SEQNUM, seq),
    )


@pytest.mark.parametrize(
    ("pdu", "status", "says"),
    [
        (SubmitSm(1, "a", "b", b"\x05\x00\x03\x07\x00\x01x", esm_class=0x40), 0x43, "1 of 0"),
        (SubmitSm(1, "a", "b", b"\x05\x00\x03\x07\x02\x03x", esm_class=0x40), 0x43, "3 of 2"),
        (SubmitSm(1, "a", "b", b"\x04\x00\x02\x07\x02x", esm_class=0x40), 0x43, "2 octets"),
        (SubmitSm(1, "a", "b", b"\x06\x08\x04\x00\x07\x02\x00x", esm_class=0x40), 0x43, "0 of 2"),
        (SubmitSm(1, "a", "b", b"x", tlvs=_sar(b"\0\7", b"\2", b"\3")), 0xC4, "3 of"),
        (SubmitSm(1, "a", "b", b"x", tlvs=_sar(b"\0\7", b"\0", b"\0")), 0xC4, "0 of"),
        (SubmitSm(1, "a", "b", b"x", tlvs=_sar(b"\7", b"\2", b"\1")), 0xC4, "1 octets, not 2"),
        (SubmitSm(1, "a", "b", b"x", tlvs=_sar(b"\0\7", b"\0\2", b"\1")), 0xC4, "not 1"),
        (SubmitSm(1, "a", "b", b"x", tlvs=_sar(b"\0\7", b"\2", b"\1")[:2]), 0xC4, "together"),
        (SubmitSm(1, "a", "b", b"\x00a\x00", data_coding=8), 0x01, "3 octets"),
    ],
)
def test_broken_concatenation_and_ucs2_are_refused(pdu: SubmitSm, status: int, says: str) -> None:
    """Each was taken and reached the handset as a broken message (or waited for ever)."""
    with pytest.raises(SubmitRefused) as refused:
        read_part(pdu)
    assert refused.value.status == status and says in str(refused.value)


def test_sender_ids_follow_the_rule_of_every_door() -> None:
    longest = "00" + "4" * 15  # a 15-digit number with the international prefix
    for good in ("", "ACME", "Acme2026", "+4915550000001", "4915550000001", "12345", longest):
        assert sender_refused(good) is None, good
    for bad in ("\x01ACME", "ÿþä", "A" * 12, "ACME GmbH", "+" + "4" * 16):
        assert "not a valid sender ID" in (sender_refused(bad) or ""), bad


def test_delivery_window() -> None:
    day = 86400.0
    assert delivery_window("", "", NOW, day) == Window(None, NOW + timedelta(days=1))
    later = delivery_window("000000020000000R", "", NOW, day)  # in 2 h, default validity
    assert later == Window(NOW + timedelta(hours=2), NOW + timedelta(days=1, hours=2))
    assert delivery_window("", "990000000000000R", NOW, day).expires == NOW + timedelta(days=30)
    past = delivery_window("010101000000000+", "", NOW, day)  # long past: now
    assert past == Window(None, NOW + timedelta(days=1))
    for schedule, validity, status in [
        ("000002000000000R", "000001000000000R", c.ESME_RINVSCHED),  # after its validity
        ("990000000000000R", "", c.ESME_RINVSCHED),  # 99 years: after the longest validity
        ("271201000000049+", "", c.ESME_RINVSCHED),  # UTC offset of 49 quarter hours
        ("", "271201000000049-", c.ESME_RINVEXPIRY),
        ("", "010101000000000+", c.ESME_RINVEXPIRY),
    ]:
        with pytest.raises(SubmitRefused) as refused:
            delivery_window(schedule, validity, NOW, day)
        assert refused.value.status == status, (schedule, validity)


def test_parts_needed() -> None:
    def payload(data: bytes, coding: int = 0) -> SubmitSm:
        return SubmitSm(1, "a", "b", data_coding=coding, tlvs=(Tlv(c.TLV_MESSAGE_PAYLOAD, data),))

    assert parts_needed(read_part(payload(b"x" * 160)), 10) == ("gsm7", 1)
    assert parts_needed(read_part(payload(b"x" * 161)), 10) == ("gsm7", 2)
    assert parts_needed(read_part(payload(b"H\xf4tel", 3)), 10) == ("ucs2", 1)  # not GSM-7
    udh = SubmitSm(1, "a", "b", b"\x05\x00\x03\x07\x0b\x01x", esm_class=0x40)
    assert parts_needed(read_part(SubmitSm(1, "a", "b", b"x" * 140)), 1) == ("gsm7", 1)
    for too_long in (payload(b"x" * 1531), udh):  # 11 parts
        with pytest.raises(SubmitRefused) as refused:
            parts_needed(read_part(too_long), 10)
        assert refused.value.status == c.ESME_RINVMSGLEN
        assert "takes 11 SMS parts; this account sends at most 10" in str(refused.value)


@pytest.mark.parametrize(
    ("wishes", "expected"),
    [
        ([0x11, 0, 0], 0x11),  # Kannel: the first part asks, with intermediate notification
        ([0, 0, 1], 1),
        ([0, 1, 0], 1),
        ([0, 0, 0], 0),
        ([2, 0, 0], 2),
        ([2, 1], 1),  # every outcome is wider than failures only
        ([1, 2], 1),
        ([0x04, 0x02], 0x06),  # SME acknowledgement of one part, failures of another
        ([], 0),
    ],
)
def test_a_concatenated_message_asks_what_any_part_asked(wishes: list[int], expected: int) -> None:
    assert message_receipt_wish(wishes) == expected
