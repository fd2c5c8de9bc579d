"""Per-SMSC MT encoding, packing, SMPP times, token bucket, throttle pause, routes, ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.mt.routing import Route, RouteError, check_routes, choose
from bridge.smpp import constants as c
from bridge.smpp.encoding import (
    EncodingOptions,
    fill_bits_after,
    pack_septets,
    plan_parts,
    unpack_septets,
)
from bridge.smpp.pdu_types import find_tlv
from bridge.smpp.throttle import ThrottlePause, TokenBucket
from bridge.smpp.times import absolute_time, relative_time, schedule_field, validity_field
from bridge.text.gsm7 import decode_gsm7, encode_gsm7
from bridge.transports.smpp_config import canonical_id


def test_pack_known_vector() -> None:
    # "hellohello" packed is the 3GPP textbook example
    assert pack_septets(b"hellohello").hex() == "e8329bfd4697d9ec37"
    assert unpack_septets(bytes.fromhex("e8329bfd4697d9ec37")) == b"hellohello"


@given(st.binary(max_size=200).map(lambda b: bytes(x & 0x7F for x in b)), st.integers(0, 6))
def test_pack_round_trip(septets: bytes, fill: int) -> None:
    out = unpack_septets(pack_septets(septets, fill), fill)
    # a final '@' or CR filling the last octet exactly reads as the padding of 7 spare
    # bits (CR by TS 23.038, zeros by some senders): the one ambiguity
    assert out == septets or (out == septets[:-1] and septets[-1] in (0, 0x0D))


def _as_an_smsc_reads(data: bytes, fill: int = 0) -> str:
    """The text in packed `data` with as many septets as its octets hold (the SMSC
    knows sm_length, not the number of septets)."""
    value = int.from_bytes(data, "little") >> fill
    count = (len(data) * 8 - fill) // 7
    return decode_gsm7(bytes((value >> (7 * i)) & 0x7F for i in range(count)))


@pytest.mark.parametrize("text", ["See you", "Call me at home"])  # 8n - 1 septets
def test_seven_spare_bits_are_a_cr_not_an_at_sign(text: str) -> None:
    """TS 23.038 6.1.2.3.1: with 7 spare bits in the last octet they are CR. Zeros
    made the SMSC read one septet more, '@': "See you@"."""
    [part] = plan_parts(text, "gsm7", EncodingOptions(packed=True))
    data = part.short_message
    assert len(data) == len(text) * 7 // 8 + 1 and data[-1] >> 1 == 0x0D
    assert _as_an_smsc_reads(data) == text + "\r"  # a CR shows as nothing at the end
    assert unpack_septets(data) == encode_gsm7(text)  # and we drop it
    assert _as_an_smsc_reads(pack_septets(encode_gsm7("hellohello"))) == "hellohello"


def test_seven_spare_bits_after_a_udh_are_a_cr_too() -> None:
    text = "x" * 201  # the second part: 1 fill bit after the UDH, then 48 septets
    parts = plan_parts(text, "gsm7", EncodingOptions(packed=True), ref=7)
    body = parts[1].short_message[6:]
    assert _as_an_smsc_reads(body, fill_bits_after(6)) == "x" * 48 + "\r"
    assert unpack_septets(body, fill_bits_after(6)) == b"x" * 48


def test_fill_bits() -> None:
    assert fill_bits_after(6) == 1  # 8-bit ref UDH: 48 bits -> 49 = 7 septets
    assert fill_bits_after(7) == 0


def test_defaults_single_and_udh8() -> None:
    assert plan_parts("a" * 160, "gsm7", EncodingOptions())[0].short_message == b"a" * 160
    parts = plan_parts("a" * 161, "gsm7", EncodingOptions(), ref=0x42)
    assert [p.short_message[:6] for p in parts] == [
        b"\x05\x00\x03\x42\x02\x01",
        b"\x05\x00\x03\x42\x02\x02",
    ]
    assert [len(p.short_message) - 6 for p in parts] == [153, 8]
    assert {p.esm_class for p in parts} == {c.ESM_UDHI}


def test_esc_never_orphaned_and_udh16() -> None:
    parts = plan_parts("a" * 151 + "€" + "b" * 20, "gsm7", EncodingOptions(concat="udh16"))
    first = parts[0].short_message
    assert first[:4] == b"\x06\x08\x04\x00" and len(first) - 7 == 151  # ESC moved on


def test_sar_and_payload() -> None:
    parts = plan_parts("x" * 200, "gsm7", EncodingOptions(concat="sar"), ref=0x1234)
    assert [p.esm_class for p in parts] == [0, 0]
    assert find_tlv(parts[1].tlvs, c.TLV_SAR_MSG_REF_NUM) == b"\x12\x34"
    assert find_tlv(parts[1].tlvs, c.TLV_SAR_SEGMENT_SEQNUM) == b"\x02"
    [whole] = plan_parts("x" * 500, "gsm7", EncodingOptions(concat="payload"))
    assert whole.short_message == b"" and find_tlv(whole.tlvs, c.TLV_MESSAGE_PAYLOAD) == b"x" * 500


def test_packed_single_and_multi() -> None:
    [one] = plan_parts("hellohello", "gsm7", EncodingOptions(packed=True))
    assert one.short_message.hex() == "e8329bfd4697d9ec37"
    parts = plan_parts("a" * 200, "gsm7", EncodingOptions(packed=True))
    assert all(len(p.short_message) <= 140 for p in parts)
    udh, body = parts[0].short_message[:6], parts[0].short_message[6:]
    assert udh[:3] == b"\x05\x00\x03"
    assert unpack_septets(body, fill_bits_after(6))[:153] == b"a" * 153


def test_latin1_default_alphabet() -> None:
    [p] = plan_parts("Grüße", "gsm7", EncodingOptions(default_alphabet="latin1"))
    assert (p.data_coding, p.short_message) == (0, "Grüße".encode("latin-1"))
    parts = plan_parts("é" * 141, "gsm7", EncodingOptions(default_alphabet="latin1"))
    assert [len(x.short_message) - 6 for x in parts] == [134, 7]
    [u] = plan_parts("Δ", "gsm7", EncodingOptions(default_alphabet="latin1"))
    assert u.data_coding == 0x08  # Latin-1 cannot carry Δ: UCS-2 instead


def test_flash_and_max_length() -> None:
    assert (
        plan_parts("hi", "gsm7", EncodingOptions(default_alphabet="latin1"), flash=True)[
            0
        ].data_coding
        == 0x10
    )
    assert plan_parts("hi", "ucs2", EncodingOptions(), flash=True)[0].data_coding == 0x18
    parts = plan_parts("a" * 200, "gsm7", EncodingOptions(max_length=140))
    assert all(len(p.short_message) <= 140 for p in parts) and len(parts) == 2


def test_ucs2_parts_keep_surrogates() -> None:
    parts = plan_parts("я" * 66 + "😀" + "я" * 10, "ucs2", EncodingOptions())
    for p in parts:
        p.short_message[6:].decode("utf-16-be")  # never a broken pair


def test_times() -> None:
    assert relative_time(172_800) == "000002000000000R"
    assert relative_time(3661) == "000000010101000R"
    at = datetime(2026, 11, 22, 13, 5, 9, tzinfo=UTC)
    assert absolute_time(at) == "261122130509000+"
    assert validity_field(None, at, "relative") == ""
    assert validity_field(60, at, "absolute") == "261122130609000+"
    assert validity_field(60, at, "none") == ""
    assert schedule_field(at, at) == ""


def test_token_bucket() -> None:
    b = TokenBucket(10.0)
    assert [b.reserve(0.0) for _ in range(3)] == pytest.approx([0.0, 0.1, 0.2])
    burst = TokenBucket(10.0, burst=3)
    assert [burst.reserve(0.0) for _ in range(4)] == pytest.approx([0.0, 0.0, 0.0, 0.1])
    assert TokenBucket(0.0).reserve(5.0) == 0.0


def test_token_bucket_take_refuses_without_booking() -> None:
    b = TokenBucket(2.0, burst=3)
    assert [b.take(0.0) for _ in range(5)] == [True, True, True, False, False]
    assert b.take(0.4) is False and b.take(0.5) is True  # one token every 0.5 s
    assert b.take(0.6) is False  # the refusals booked nothing
    assert all(TokenBucket(0.0).take(0.0) for _ in range(100))  # 0: no limit


def test_throttle_pause_doubles_and_resets() -> None:
    p = ThrottlePause(1.0, 4.0)
    # each throttle after the pause before it ended: 1, 2, 4, then the ceiling
    assert [p.throttled(t) for t in (0.0, 1.0, 3.0, 7.0)] == [1.0, 2.0, 4.0, 4.0]
    p.succeeded()
    assert p.throttled(11.0) == 1.0 and p.remaining(11.5) == pytest.approx(0.5)


def test_a_window_throttled_for_one_burst_is_one_pause() -> None:
    """Ten requests in flight, all refused for one burst: the answers after the first
    come while its pause runs and do not double it (before: 1, 2, 4 ... 60 s)."""
    p = ThrottlePause(1.0, 60.0)
    pauses = [p.throttled(0.001 * n) for n in range(10)]
    assert pauses == pytest.approx([1.0 - 0.001 * n for n in range(10)])
    assert p.current == 1.0 and p.until == 1.0
    assert p.throttled(1.002) == 2.0  # refused again after the pause: that one doubles
    assert p.until == pytest.approx(3.002)


def test_routes_are_checked() -> None:
    ok = [Route("+4915", ("a",)), Route("49", ("b", "a")), Route("", ("a",))]
    check_routes(ok, {"a", "b"})
    assert choose("+491512", ok) == ("a",) and choose("+4930", ok) == ("b", "a")
    for bad in (
        [Route("49", ("a",))],
        [Route("49", ("a",)), Route("4915", ("a",)), Route("", ("a",))],
        [Route("49x", ("a",)), Route("", ("a",))],
        [Route("", ("zzz",))],
    ):
        with pytest.raises(RouteError):
            check_routes(bad, {"a", "b"})


def test_canonical_ids() -> None:
    assert canonical_id("1A", "hex") == "26" == canonical_id("0026", "dec")
    assert canonical_id("abc-1", "dec") == "abc-1" and canonical_id("0A", "text") == "0A"
