"""submit_sm encoding: the transport's per-SMS template and the codec give the same octets.

The transport encodes each MT part with `SubmitSmTemplate` (the fields all parts share
encoded once) instead of building a `SubmitSm` and running the codec; both must put the
same octets on the wire for every kind of SMS, and the codec must still write what it
wrote when it joined the fields one by one.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from bridge.smpp import constants as c
from bridge.smpp.pdu import EncodedSubmitSm, SubmitSm, SubmitSmTemplate, Tlv, decode, encode
from bridge.smpp.pdu_types import Tlvs
from bridge.transports.smpp import SmppConfig, SmppTransport
from bridge.values import OutboundSms, SmsSegment


def _old_body(p: SubmitSm) -> bytes:
    """The codec's submit_sm body as it was written field by field (the reference)."""

    def cstr(text: str) -> bytes:
        return text.encode("latin-1") + b"\0"

    def tlv_bytes(tlvs: Tlvs) -> bytes:
        return b"".join(
            t.tag.to_bytes(2, "big") + len(t.value).to_bytes(2, "big") + t.value for t in tlvs
        )

    sm = p.short_message
    if len(sm) > 254:
        raise ValueError(f"short_message is {len(sm)} octets; at most 254 fit (use TLV 0x0424)")
    return b"".join(
        (
            cstr(p.service_type),
            bytes((p.source_addr_ton, p.source_addr_npi)),
            cstr(p.source_addr),
            bytes((p.dest_addr_ton, p.dest_addr_npi)),
            cstr(p.destination_addr),
            bytes((p.esm_class, p.protocol_id, p.priority_flag)),
            cstr(p.schedule_delivery_time),
            cstr(p.validity_period),
            bytes(
                (
                    p.registered_delivery,
                    p.replace_if_present_flag,
                    p.data_coding,
                    p.sm_default_msg_id,
                    len(sm),
                )
            ),
            sm,
            tlv_bytes(p.tlvs),
        )
    )


SAR = (
    Tlv(c.TLV_SAR_MSG_REF_NUM, b"\x01\x2c"),
    Tlv(c.TLV_SAR_TOTAL_SEGMENTS, b"\x03"),
    Tlv(c.TLV_SAR_SEGMENT_SEQNUM, b"\x02"),
)
UDH8 = b"\x05\x00\x03\x2a\x03\x01"
PORTS = b"\x06\x05\x04\x0b\x84\x23\xf0"  # application port addressing (WAP push)


def _sar(seq: int) -> tuple[tuple[int, bytes], ...]:
    return (
        (c.TLV_SAR_MSG_REF_NUM, b"\x00\x07"),
        (c.TLV_SAR_TOTAL_SEGMENTS, b"\x02"),
        (c.TLV_SAR_SEGMENT_SEQNUM, bytes((seq,))),
    )


UDH16 = b"\x06\x08\x04\x01\x2c\x03\x02"

# (shared fields, per-part fields): every alphabet, concatenation and TON/NPI the transport writes
CORPUS: list[tuple[dict[str, object], dict[str, object]]] = [
    (
        {
            "source_addr": "Bridge",
            "destination_addr": "4915112345678",
            "source_addr_ton": 5,
            "dest_addr_ton": 1,
            "dest_addr_npi": 1,
            "registered_delivery": 1,
        },
        {"short_message": b"Hello @\x00 world", "esm_class": 0, "data_coding": 0},
    ),
    (
        {
            "source_addr": "4917012345678",
            "destination_addr": "4915112345678",
            "source_addr_ton": 1,
            "source_addr_npi": 1,
            "dest_addr_ton": 1,
            "dest_addr_npi": 1,
        },
        {"short_message": "Grüße ☺".encode("utf-16-be"), "esm_class": 0, "data_coding": 8},
    ),
    (
        {
            "source_addr": "12345",
            "destination_addr": "41790000000",
            "source_addr_ton": 0,
            "source_addr_npi": 1,
            "dest_addr_ton": 1,
            "dest_addr_npi": 1,
            "priority_flag": 1,
            "validity_period": "000002000000000R",
            "registered_delivery": 1,
        },
        {"short_message": UDH8 + b"x" * 153, "esm_class": c.ESM_UDHI, "data_coding": 0},
    ),
    (
        {
            "source_addr": "Shop",
            "destination_addr": "447700900123",
            "source_addr_ton": 5,
            "dest_addr_ton": 1,
            "dest_addr_npi": 1,
            "schedule_delivery_time": "261202213000000+",
            "validity_period": "261203213000000+",
        },
        {
            "short_message": UDH16 + "é".encode("utf-16-be") * 66,
            "esm_class": c.ESM_UDHI,
            "data_coding": 8,
        },
    ),
    (
        {
            "source_addr": "Shop",
            "destination_addr": "447700900123",
            "source_addr_ton": 5,
            "dest_addr_ton": 1,
            "dest_addr_npi": 1,
        },
        {"short_message": b"y" * 153, "esm_class": 0, "data_coding": 0, "tlvs": SAR},
    ),
    (
        {
            "source_addr": "",
            "destination_addr": "",
            "service_type": "CMT",
            "replace_if_present_flag": 1,
            "sm_default_msg_id": 3,
            "protocol_id": 0x40,
        },
        {
            "short_message": b"",
            "esm_class": 0,
            "data_coding": 0x10,
            "tlvs": (Tlv(c.TLV_MESSAGE_PAYLOAD, b"p" * 400),),
        },
    ),
    (
        {
            "source_addr": "Café",
            "destination_addr": "33612345678",
            "source_addr_ton": 5,
            "source_addr_npi": 0,
            "dest_addr_ton": 2,
            "dest_addr_npi": 8,
        },
        {"short_message": b"\x00" * 254, "esm_class": 0x03, "data_coding": 0x18},
    ),
]


def _pdu(shared: dict[str, object], part: dict[str, object]) -> SubmitSm:
    return SubmitSm(0, **{**shared, **part})  # type: ignore[arg-type]


@pytest.mark.parametrize("shared,part", CORPUS)
def test_codec_writes_what_it_wrote_field_by_field(
    shared: dict[str, object], part: dict[str, object]
) -> None:
    pdu = _pdu(shared, part)
    assert encode(pdu, 9)[16:] == _old_body(pdu)
    assert decode(encode(pdu, 9)) == dataclasses.replace(pdu, sequence=9)


@pytest.mark.parametrize("shared,part", CORPUS)
def test_template_body_equals_the_codec(shared: dict[str, object], part: dict[str, object]) -> None:
    pdu = _pdu(shared, part)
    body = SubmitSmTemplate.of(**shared).body(**{"tlvs": (), **part})  # type: ignore[arg-type]
    assert body == encode(pdu)[16:]
    assert encode(EncodedSubmitSm(0, body), 4711) == encode(pdu, 4711)


@pytest.mark.parametrize(
    "shared,part",
    [
        ({"source_addr": "Bridge", "destination_addr": "1", "source_addr_ton": 256}, {}),
        ({"source_addr": "Bridge", "destination_addr": "1", "priority_flag": -1}, {}),
        ({"source_addr": "Bridge", "destination_addr": "1", "sm_default_msg_id": 300}, {}),
        ({"source_addr": "Bridge", "destination_addr": "1"}, {"esm_class": 256}),
        ({"source_addr": "Bridge", "destination_addr": "1"}, {"short_message": b"x" * 255}),
        ({"source_addr": "Ärzte€", "destination_addr": "1"}, {}),
    ],
)
def test_bad_fields_fail_alike(shared: dict[str, object], part: dict[str, object]) -> None:
    part = {"short_message": b"x", "esm_class": 0, "data_coding": 0, "tlvs": (), **part}
    with pytest.raises((ValueError, UnicodeEncodeError)) as old:
        _old_body(_pdu(shared, part))
    with pytest.raises(type(old.value)) as codec:
        encode(_pdu(shared, part))
    with pytest.raises(type(old.value)) as template:
        SubmitSmTemplate.of(**shared).body(**part)  # type: ignore[arg-type]
    assert str(codec.value) == str(template.value) == str(old.value)


NOW = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
LONG = "Der schnelle braune Fuchs springt über den faulen Hund. " * 5
SMS: list[OutboundSms] = [
    OutboundSms("m1.1", "+4915112345678", "Bridge", "Hello @ world {}", "gsm7"),
    OutboundSms("m2.1", "+4915112345678", "+4917012345678", LONG, "gsm7", validity=3600),
    OutboundSms("m3.1", "+41790000000", "12345", "Grüße ☺ " * 30, "ucs2", flash=True),
    OutboundSms(
        "m4.1",
        "+447700900123",
        "00447700900999",
        "hi",
        "gsm7",
        priority=2,
        schedule_at=NOW + timedelta(days=1),
        want_receipt=False,
    ),
    OutboundSms("m5.1", "+447700900123", "Shop", "again", "gsm7", resubmit=True, may_replace=True),
    OutboundSms(
        "m6.1",
        "+33612345678",
        "Café",
        "x",
        "gsm7",
        segments=(
            SmsSegment(UDH8 + b"abc", c.ESM_UDHI, 0),
            SmsSegment(b"\x05\x00\x03\x2a\x03\x02d", 0x40, 8),
        ),
    ),
    OutboundSms(
        "m7.1",
        "+33612345678",
        "Café",
        "x",
        "gsm7",
        segments=(
            SmsSegment(PORTS + b"\x01" * 100, c.ESM_UDHI, 4, _sar(1)),
            SmsSegment(PORTS + b"\x02" * 10, c.ESM_UDHI, 4, _sar(2)),
        ),
    ),
]
CONFIGS: list[dict[str, object]] = [
    {},
    {"concat": "udh16", "validity_format": "absolute", "service_type": "CMT"},
    {"concat": "sar", "gsm7_packed": True, "source_ton": 1, "source_npi": 1},
    {"concat": "payload", "default_alphabet": "latin1", "resubmit_marker": "replace_if_present"},
    {"default_alphabet": "ascii", "max_short_message": 140},
]


@pytest.mark.parametrize("settings", CONFIGS)
def test_the_transport_encodes_every_part_as_the_codec_does(settings: dict[str, object]) -> None:
    config = SmppConfig(
        name="smsc",
        host="127.0.0.1",
        port=1,
        system_id="b",
        password="p",
        **settings,
    )
    transport = SmppTransport(config)
    for sms in SMS:
        parts, shared = transport._plan(sms, transport._reference(sms.order_id))
        template = SubmitSmTemplate.of(**shared)
        for part in parts:
            pdu = SubmitSm(
                0,
                short_message=part.short_message,
                esm_class=part.esm_class,
                data_coding=part.data_coding,
                tlvs=part.tlvs,
                **shared,
            )
            body = template.body(part.esm_class, part.data_coding, part.short_message, part.tlvs)
            assert body == _old_body(pdu) == encode(pdu)[16:], (settings, sms.order_id)
