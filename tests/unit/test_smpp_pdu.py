"""PDU codec: round trips, tolerance, and byte-for-byte agreement with smpp34's encoder."""

from __future__ import annotations

import asyncio
import struct

import pytest
import smpp34

from bridge.smpp import constants as c
from bridge.smpp.pdu import (
    AlertNotification,
    Bind,
    BindResp,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    PduError,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Unbind,
    UnbindResp,
    UnknownPdu,
    _decode_short_message,
    _Reader,
    decode,
    decode_body,
    encode,
)

SAMPLES: list[Pdu] = [
    Bind(c.BIND_TRANSCEIVER, 1, "bridge", "secret", "mail", addr_ton=1, addr_npi=1),
    Bind(c.BIND_TRANSMITTER, 2, "x", ""),
    Bind(c.BIND_RECEIVER, 3, "x", "", address_range="^49"),
    BindResp(c.BIND_TRANSCEIVER_RESP, 1, 0, "smsc", (Tlv(c.TLV_SC_INTERFACE_VERSION, b"\x34"),)),
    BindResp(c.BIND_TRANSCEIVER_RESP, 1, c.ESME_RINVPASWD, ""),
    SubmitSm(
        7,
        "Bridge",
        "4915112345678",
        b"@\x00hello\x00",
        source_addr_ton=5,
        dest_addr_ton=1,
        dest_addr_npi=1,
        esm_class=0x40,
        registered_delivery=1,
        data_coding=8,
        tlvs=(Tlv(0x1403, b"vendor"), Tlv(c.TLV_SAR_MSG_REF_NUM, b"\x00\x07")),
    ),
    DeliverSm(9, "4915112345678", "12345", b"", esm_class=4),
    DataSm(10, "a", "b", tlvs=(Tlv(c.TLV_MESSAGE_PAYLOAD, b"x" * 300),)),
    SubmitSmResp(7, 0, "abc123"),
    SubmitSmResp(8, c.ESME_RTHROTTLED, ""),
    DeliverSmResp(9, c.ESME_RX_T_APPN),
    DataSmResp(10, 0, "id", (Tlv(c.TLV_CONGESTION_STATE, b"\x10"),)),
    EnquireLink(11),
    EnquireLinkResp(11),
    Unbind(12),
    UnbindResp(12),
    GenericNack(13, c.ESME_RINVCMDID),
    UnknownPdu(c.QUERY_SM, 14, 0, b"1\x00\x00\x00\x00"),
    AlertNotification(
        15,
        "491701234567",
        "4915550000001",
        1,
        1,
        1,
        1,
        (Tlv(c.TLV_MS_AVAILABILITY_STATUS, b"\x00"),),
    ),
]


@pytest.mark.parametrize("pdu", SAMPLES, ids=lambda p: type(p).__name__)
def test_round_trip(pdu: Pdu) -> None:
    data = encode(pdu)
    assert struct.unpack(">I", data[:4])[0] == len(data)
    assert decode(data) == pdu


def test_sequence_override() -> None:
    data = encode(EnquireLink(1), 42)
    assert decode(data) == EnquireLink(42)


def test_short_message_with_nul_octets_survives() -> None:
    sm = b"\x00\x00\x00"  # '@@@' in GSM-7
    pdu = decode(encode(SubmitSm(1, "a", "b", sm)))
    assert isinstance(pdu, SubmitSm)
    assert pdu.short_message == sm


def test_error_response_without_body() -> None:
    raw = struct.pack(">IIII", 16, c.SUBMIT_SM_RESP, c.ESME_RINVDSTADR, 5)
    assert decode(raw) == SubmitSmResp(5, c.ESME_RINVDSTADR, "")


def test_truncated_tlv_is_kept_not_fatal() -> None:
    good = encode(SubmitSmResp(1, 0, "x"))
    bad_tail = struct.pack(">HH", 0x1500, 10) + b"abc"
    raw = struct.pack(">I", len(good) + len(bad_tail)) + good[4:] + bad_tail
    pdu = decode(raw)
    assert isinstance(pdu, SubmitSmResp)
    assert pdu.tlvs == (Tlv(0x1500, b"abc"),)


def test_bad_lengths_raise_pdu_error() -> None:
    with pytest.raises(PduError):
        decode(b"\x00\x00\x00\x08" + b"\x00" * 12)
    body_cut = encode(SubmitSm(1, "a", "b", b"hello"))[:-2]
    with pytest.raises(PduError):
        decode(struct.pack(">I", len(body_cut)) + body_cut[4:])


def test_short_message_over_254_refused() -> None:
    with pytest.raises(ValueError):
        encode(SubmitSm(1, "a", "b", b"x" * 255))


def test_status_table() -> None:
    for temp in (0x14, 0x58, 0x64, 0x08):
        assert c.is_temporary(temp)
    for perm in (0x0B, 0x0D, 0x0E, 0x45, 0xFF, 0x1234):
        assert not c.is_temporary(perm)
    assert c.status_name(0x58) == "ESME_RTHROTTLED (0x58)"


# --- independent encoder: smpp34 --------------------------------------------------------------


def test_submit_sm_bytes_match_smpp34() -> None:
    theirs = smpp34.SubmitSm(
        "Bridge",
        "4915112345678",
        b"\x05\x00\x03\x2a\x02\x01@\x00abc",
        source_addr_ton=5,
        source_addr_npi=0,
        dest_addr_ton=1,
        dest_addr_npi=1,
        esm_class=0x40,
        registered_delivery=1,
        data_coding=0,
        tlvs=[smpp34.Tlv(0x1403, b"v")],
        sequence_number=77,
    ).encode()
    ours = SubmitSm(
        77,
        "Bridge",
        "4915112345678",
        b"\x05\x00\x03\x2a\x02\x01@\x00abc",
        source_addr_ton=5,
        source_addr_npi=0,
        dest_addr_ton=1,
        dest_addr_npi=1,
        esm_class=0x40,
        registered_delivery=1,
        data_coding=0,
        tlvs=(Tlv(0x1403, b"v"),),
    )
    assert encode(ours) == bytes(theirs)
    assert decode(bytes(theirs)) == ours


def test_deliver_sm_bytes_match_smpp34() -> None:
    text = b"id:2001 sub:001 dlvrd:001 submit date:2611051200 done date:2611051201 stat:DELIVRD"
    theirs = smpp34.DeliverSm(
        "4915112345678",
        "Bridge",
        text,
        source_addr_ton=1,
        source_addr_npi=1,
        esm_class=0x04,
        tlvs=[
            smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, b"2001\x00"),  # type: ignore[attr-defined]
            smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, b"\x02"),  # type: ignore[attr-defined]
        ],
        sequence_number=5,
    ).encode()
    ours = DeliverSm(
        5,
        "4915112345678",
        "Bridge",
        text,
        source_addr_ton=1,
        source_addr_npi=1,
        esm_class=0x04,
        tlvs=(Tlv(c.TLV_RECEIPTED_MESSAGE_ID, b"2001\x00"), Tlv(c.TLV_MESSAGE_STATE, b"\x02")),
    )
    assert encode(ours) == bytes(theirs)
    theirs_decoded = smpp34.decode(encode(ours))
    assert isinstance(theirs_decoded, smpp34.DeliverSm)
    assert theirs_decoded.short_message == text
    assert theirs_decoded.esm_class == 0x04


async def _read_pdu(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(16)
    (length,) = struct.unpack(">I", header[:4])
    return header + await reader.readexactly(length - 16)


async def test_wire_capture_of_smpp34_client_bind_and_submit() -> None:
    """smpp34's Client talks to a recorder; we decode what it sent and it accepts our answers."""
    captured: list[Pdu] = []

    async def recorder(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                pdu = decode(await _read_pdu(reader))
                captured.append(pdu)
                if isinstance(pdu, Bind):
                    writer.write(
                        encode(BindResp(pdu.command_id | c.RESP_BIT, pdu.sequence, 0, "rec"))
                    )
                elif isinstance(pdu, SubmitSm):
                    writer.write(encode(SubmitSmResp(pdu.sequence, 0, "m-1")))
                elif isinstance(pdu, Unbind):
                    writer.write(encode(UnbindResp(pdu.sequence)))
                elif isinstance(pdu, EnquireLink):
                    writer.write(encode(EnquireLinkResp(pdu.sequence)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(recorder, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = smpp34.Client(
        "127.0.0.1", port, system_id="sys", password="pw", bind_type="TRX", system_type="mail"
    )
    try:
        smsc = await asyncio.wait_for(client.connect(), 10)
        resp = await asyncio.wait_for(
            smsc.submit_sm(
                "4915112345678",
                b"\x00hi",
                source_addr="Bridge",
                source_addr_ton=5,
                dest_addr_ton=1,
                dest_addr_npi=1,
                registered_delivery=1,
                data_coding=8,
            ),
            10,
        )
        assert resp.message_id == "m-1"
        with_unbind = asyncio.wait_for(smsc.unbind(), 5)
        await with_unbind
    finally:
        await client.stop()
        server.close()
        await server.wait_closed()
    bind = captured[0]
    assert isinstance(bind, Bind)
    assert (bind.command_id, bind.system_id, bind.password) == (c.BIND_TRANSCEIVER, "sys", "pw")
    assert bind.system_type == "mail"
    assert bind.interface_version == 0x34
    submit = next(p for p in captured if isinstance(p, SubmitSm))
    assert submit.destination_addr == "4915112345678"
    assert submit.source_addr == "Bridge"
    assert (submit.source_addr_ton, submit.dest_addr_ton, submit.dest_addr_npi) == (5, 1, 1)
    assert submit.short_message == b"\x00hi"
    assert (submit.registered_delivery, submit.data_coding) == (1, 8)


def test_alert_notification_bytes_as_smpp_3_4_lays_them_out() -> None:
    """SMPP 3.4 section 4.12.1: ton, npi, source_addr, esme ton, npi, esme_addr, TLVs."""
    body = b"\x01\x01491701234567\x00\x01\x014915550000001\x00" + b"\x04\x22\x00\x01\x02"
    wire = struct.pack(">IIII", 16 + len(body), 0x102, 0, 3) + body
    pdu = decode(wire)
    assert pdu == AlertNotification(
        3,
        "491701234567",
        "4915550000001",
        1,
        1,
        1,
        1,
        (Tlv(c.TLV_MS_AVAILABILITY_STATUS, b"\x02"),),
    )
    assert encode(pdu) == wire


def _reader_decode(command_id: int, body: bytes) -> object:
    """What the field-by-field reader makes of a body: the PDU, or the PduError's text."""
    r = _Reader(body)
    try:
        if command_id in (c.SUBMIT_SM_RESP, c.DELIVER_SM_RESP):
            resp = SubmitSmResp if command_id == c.SUBMIT_SM_RESP else DeliverSmResp
            return resp(5, 0, r.cstr(), r.tlvs())
        cls = SubmitSm if command_id == c.SUBMIT_SM else DeliverSm
        return cls(sequence=5, status=0, **_decode_short_message(r))  # type: ignore[arg-type]
    except PduError as exc:
        return f"error: {exc}"


def _body_decode(command_id: int, body: bytes) -> object:
    try:
        return decode_body(command_id, 0, 5, body)
    except PduError as exc:
        return f"error: {exc}"


SHORT_MESSAGES: list[Pdu] = [
    SAMPLES[5],  # every field set, NULs inside short_message, two TLVs
    DeliverSm(9, "4915112345678", "12345", b"", esm_class=4),
    DeliverSm(
        3,
        "+41790000000",
        "Sender",
        b"id:0A1B2C3D sub:001 dlvrd:001 submit date:2612022130 done date:2612022130 "
        b"stat:DELIVRD err:000 text:hello",
        esm_class=4,
        tlvs=(Tlv(c.TLV_RECEIPTED_MESSAGE_ID, b"0A1B2C3D\x00"), Tlv(c.TLV_MESSAGE_STATE, b"\x02")),
    ),
    SubmitSm(
        1,
        "",
        "",
        b"\x00" * 254,
        schedule_delivery_time="261202213000000+",
        validity_period="000001000000000R",
    ),
    SubmitSm(2, "A", "B", b"x", tlvs=(Tlv(c.TLV_MESSAGE_PAYLOAD, b""),)),
    # TON 0 / NPI 0 (unknown), as SMSCs send for national numbers: NUL octets beside the
    # addresses, which a search for the addresses' terminators must step over
    DeliverSm(
        7,
        "01701234567",
        "4915550000001",
        b"reply",
        source_addr_ton=0,
        source_addr_npi=0,
        dest_addr_ton=0,
        dest_addr_npi=0,
    ),
]


@pytest.mark.parametrize("pdu", SHORT_MESSAGES, ids=lambda p: type(p).__name__)
def test_the_one_pass_decode_equals_the_field_reader_on_every_cut_and_extension(pdu: Pdu) -> None:
    body = encode(pdu)[16:]
    odd = [body[:n] for n in range(len(body))]  # every truncation
    odd += [body + b"\x00", body + b"\x01\x02\x03", body + b"\x00\x00\x00\x05ab"]
    odd += [body.replace(b"\x00", b"\x01", k) for k in range(1, 6)]  # missing terminators
    for cut in [body, *odd]:
        assert _body_decode(pdu.command_id, cut) == _reader_decode(pdu.command_id, cut), cut


@pytest.mark.parametrize(
    "body", [b"", b"\x00", b"abc123\x00", b"abc", b"id\x00\x04\x27\x00\x01\x02", b"a\x00b"]
)
def test_the_one_pass_response_decode_equals_the_field_reader(body: bytes) -> None:
    for command_id in (c.SUBMIT_SM_RESP, c.DELIVER_SM_RESP):
        assert _body_decode(command_id, body) == _reader_decode(command_id, body)
