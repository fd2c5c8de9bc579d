"""The parts an SMPP client sent, on their way to an SMSC (pure): how the SMPP server
keeps them, how dispatch reads them back, and which the transport encodes anew for its
SMSC (text) or sends as they came (binary data, UDHs with more than concatenation)."""

from __future__ import annotations

import asyncio

import pytest

from bridge.mt.dispatch_sms import _segments
from bridge.smpp import constants as c
from bridge.smpp.encoding import MtPart
from bridge.smpp.pdu import SubmitSm, Tlv
from bridge.smpp.udh import find_concat, split_udh
from bridge.smpp_server.submit import message_text, read_part
from bridge.text.gsm7 import encode_gsm7
from bridge.transports.base import TransportTemporaryFailure
from bridge.transports.smpp import SmppConfig, SmppTransport, as_sent
from bridge.values import OutboundSms, SmsSegment

PORTS = b"\x06\x05\x04\x0b\x84\x23\xf0"  # UDH: application port addressing (WAP push)


def _sar(ref: int, total: int, seq: int) -> tuple[tuple[int, bytes], ...]:
    return (
        (c.TLV_SAR_MSG_REF_NUM, ref.to_bytes(2, "big")),
        (c.TLV_SAR_TOTAL_SEGMENTS, bytes((total,))),
        (c.TLV_SAR_SEGMENT_SEQNUM, bytes((seq,))),
    )


def _plan(segments: tuple[SmsSegment, ...], text: str = "", **smsc: object) -> list[MtPart]:
    config = SmppConfig(name="s", host="127.0.0.1", port=1, system_id="b", **smsc)
    sms = OutboundSms("m.1", "+491701234567", "+4915550000001", text, "gsm7", segments=segments)
    transport = SmppTransport(config)
    return list(transport._plan(sms, transport._reference(sms.order_id))[0])


def test_the_server_keeps_a_parts_sar_tlvs_and_dispatch_reads_them_back() -> None:
    sar = tuple(Tlv(tag, value) for tag, value in _sar(0x1234, 2, 1))
    pdu = SubmitSm(1, "a", "491701234567", b"\x01\x02", data_coding=4, tlvs=sar)
    stored = read_part(pdu).part.stored()
    assert stored == [
        "0102",
        0,
        4,
        [[c.TLV_SAR_MSG_REF_NUM, "1234"], [c.TLV_SAR_TOTAL_SEGMENTS, "02"], [0x020F, "01"]],
    ]
    plain = read_part(SubmitSm(1, "a", "491701234567", b"hi")).part.stored()
    assert plain == ["6869", 0, 0]  # as parts were always stored
    assert _segments([stored, plain]) == (
        SmsSegment(b"\x01\x02", 0, 4, _sar(0x1234, 2, 1)),
        SmsSegment(b"hi", 0, 0),
    )


@pytest.mark.parametrize(
    ("segment", "kept"),
    [
        (SmsSegment(b"hi", 0, 0x00), False),
        (SmsSegment(b"hi", 0, 0x03), False),  # Latin-1
        (SmsSegment("hi".encode("utf-16-be"), 0, 0x08), False),
        (SmsSegment(b"hi", 0, 0x10), False),  # flash GSM-7
        (SmsSegment(b"\x05\x00\x03\x01\x02\x01hi", c.ESM_UDHI, 0), False),  # concat only
        (SmsSegment(b"\x01\x02", 0, 0x04), True),  # 8-bit data
        (SmsSegment(b"\x01\x02", 0, 0x02), True),
        (SmsSegment(b"\x01\x02", 0, 0xF5), True),  # 8-bit data, class 1
        (SmsSegment(b"hi", 0, 0x11), True),  # GSM-7 class 1: a new encoding would lose it
        (SmsSegment(b"hi", 0, 0xC8), True),  # message waiting indication
        (SmsSegment(PORTS + b"hi", c.ESM_UDHI, 0), True),  # a UDH with more than concat
        (SmsSegment(b"\x03\x24\x01\x01hi", c.ESM_UDHI, 0), True),  # national language shift
    ],
)
def test_what_goes_as_the_client_sent_it(segment: SmsSegment, kept: bool) -> None:
    assert as_sent((segment,)) is kept
    assert as_sent((SmsSegment(b"hi", 0, 0), segment)) is kept  # one such part: all of them


def test_a_clients_text_is_encoded_for_the_smsc() -> None:
    text = "Price 5 EUR @ shop"
    [part] = _plan((SmsSegment(encode_gsm7(text), 0, 0),), text, default_alphabet="latin1")
    assert (part.short_message, part.data_coding) == (text.encode("latin-1"), 0)
    [flash] = _plan((SmsSegment(encode_gsm7("hi"), 0, 0xF0),), "hi")
    assert (flash.short_message, flash.data_coding) == (b"hi", 0x10)  # class 0 stays
    # Latin-1 text with a character GSM-7 lacks: UCS-2 on a GSM-7 SMSC, Latin-1 on a Latin-1 one
    [ucs2] = _plan((SmsSegment("crème brûlée".encode("latin-1"), 0, 3),), "crème brûlée")
    assert (ucs2.short_message, ucs2.data_coding) == ("crème brûlée".encode("utf-16-be"), 8)
    [latin1] = _plan(
        (SmsSegment("brûlée".encode("latin-1"), 0, 3),), "brûlée", default_alphabet="latin1"
    )
    assert (latin1.short_message, latin1.data_coding) == ("brûlée".encode("latin-1"), 0)


def test_binary_sar_parts_get_one_concatenation_udh_on_a_udh_smsc() -> None:
    segments = (
        SmsSegment(PORTS + b"\x01" * 100, c.ESM_UDHI, 4, _sar(7, 2, 1)),
        SmsSegment(PORTS + b"\x02" * 10, c.ESM_UDHI, 4, _sar(7, 2, 2)),
    )
    parts = _plan(segments, concat="udh16")
    concats = []
    for part, segment in zip(parts, segments, strict=True):
        ies, body = split_udh(part.short_message)
        assert [ie.iei for ie in ies] == [0x08, 0x05]  # concatenation first, then the ports
        assert body == split_udh(segment.short_message)[1] and part.data_coding == 4
        assert part.tlvs == ()
        concats.append(find_concat(ies))
    assert concats[0] is not None and concats[1] is not None
    assert (concats[0].seq, concats[1].seq, concats[0].total) == (1, 2, 2)
    assert concats[0].ref == concats[1].ref
    kept = _plan(segments, concat="sar")
    assert [p.tlvs for p in kept] == [
        tuple(Tlv(tag, value) for tag, value in s.tlvs) for s in segments
    ]
    assert [p.short_message for p in kept] == [s.short_message for s in segments]


def test_message_text_reads_a_character_split_across_parts() -> None:
    euro = encode_gsm7("price 5€")  # ... 0x1B 0x65
    first, second = euro[:-1], euro[-1:]  # the escape pair in two parts
    udh = [bytes((5, 0, 3, 1, 2, seq)) for seq in (1, 2)]
    stored = [[(udh[0] + first).hex(), 0x40, 0], [(udh[1] + second).hex(), 0x40, 0]]
    assert message_text(stored) == ("price 5€", "gsm7")
    mixed = [[b"a".hex(), 0, 0], ["0062", 0, 8]]
    assert message_text(mixed) is None  # each part's own text then


def test_a_long_sms_keeps_its_reference_for_its_next_try_and_the_kept_ones_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An order whose parts went again took a new reference: the phone kept the first
    try's parts as a broken message of their own (the e2e test: test_smpp_faults)."""
    monkeypatch.setattr("bridge.transports.smpp.KEPT_REFERENCES", 3)
    transport = SmppTransport(SmppConfig(name="s", host="127.0.0.1", port=1, system_id="b"))
    first = transport._reference("o1")
    transport._keep_reference("o1", first)
    assert transport._reference("o2") != first  # another order: the next one
    assert transport._reference("o1") == first  # its next try: the same
    assert transport._reference("o1") != first  # taken: a later try without a failure, new
    for n in range(5):
        transport._keep_reference(f"k{n}", 100 + n)
    assert list(transport._kept_refs) == ["k2", "k3", "k4"]  # the oldest went


async def test_a_long_sms_that_fails_before_a_part_went_keeps_the_reference_it_was_given() -> None:
    """The try after a partial one can fail before anything is sent (its claim runs out,
    no bind): the reference the first try's parts carry stays for the try after it."""
    transport = SmppTransport(SmppConfig(name="s", host="127.0.0.1", port=1, system_id="b"))
    sms = OutboundSms("m.1", "+491701234567", "+4915550000001", "Three parts. " * 32, "gsm7")
    transport._keep_reference(sms.order_id, 77)
    for _ in range(2):
        with pytest.raises(TransportTemporaryFailure, match="its claim ends"):
            await transport.submit(sms, until=asyncio.get_running_loop().time())
        assert transport._kept_refs == {sms.order_id: 77}
    short = OutboundSms("m.2", "+491701234567", "+4915550000001", "One part", "gsm7")
    with pytest.raises(TransportTemporaryFailure):
        await transport.submit(short, until=asyncio.get_running_loop().time())
    assert short.order_id not in transport._kept_refs  # one part: no reference to keep
