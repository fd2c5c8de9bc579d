"""Per-SMSC MT encoding, packing, SMPP times, token bucket, throttle pause, routes, ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import example, given
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
from bridge.text.sms import chunk_septets, split_sms
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


def _as_a_handset_reads(data: bytes, fill: int = 0) -> str:
    """TS 23.038 6.1.2.3.1 as a receiver applies it: the septets the octets hold, less a
    last CR that ends on an octet boundary (padding)."""
    text = _as_an_smsc_reads(data, fill)
    if (len(data) * 8 - fill) % 7 == 0 and text.endswith("\r"):
        text = text[:-1]
    return text


def _keeps(text: str, read: str) -> bool:
    """`read` is `text`, a wanted last CR shown (CR CR is the same as CR)."""
    return read == text or (text.endswith("\r") and read == text + "\r")


@pytest.mark.parametrize("text", ["Call me\r", "Hi\r\nyou\r", "1234567\r" * 2])
def test_a_wanted_last_cr_on_an_octet_boundary_gets_a_second_cr(text: str) -> None:
    """The second rule of TS 23.038 6.1.2.3.1: a text ending in CR exactly on an octet
    boundary gets another CR and a padding bit 0; a receiver dropped the only CR."""
    assert len(encode_gsm7(text)) % 8 == 0 and text.endswith("\r")
    [part] = plan_parts(text, "gsm7", EncodingOptions(packed=True))
    data = part.short_message
    assert len(data) == len(text) * 7 // 8 + 1 and data[-1] >> 7 == 0  # CR + bit 0
    assert _as_a_handset_reads(data) == text + "\r"  # CR CR, the same as CR
    assert unpack_septets(data) == encode_gsm7(text)  # and we read one CR


def test_the_last_part_after_a_udh_keeps_its_cr() -> None:
    # part 2: 1 fill bit, then 9 septets = 64 bits, on an octet boundary
    text = "x" * 153 + "abcdefgh\r"
    parts = plan_parts(text, "gsm7", EncodingOptions(packed=True), ref=7)
    body = parts[1].short_message[6:]
    assert _as_a_handset_reads(body, fill_bits_after(6)) == "abcdefgh\r\r"
    assert unpack_septets(body, fill_bits_after(6)) == encode_gsm7("abcdefgh\r")


@pytest.mark.parametrize("concat", ["udh8", "udh16"])
def test_a_part_that_would_end_in_cr_on_an_octet_boundary_leaves_it_to_the_next(
    concat: str,
) -> None:
    """A full part (153 septets after a UDH8's fill bit, 152 after a UDH16) ends on an
    octet boundary and has no room for a second CR: its last CR goes to the next part."""
    opts = EncodingOptions(packed=True, concat=concat)  # type: ignore[arg-type]
    udh, per = (6, 153) if concat == "udh8" else (7, 152)
    text = "x" * (per - 1) + "\r" + "y" * 40 + "\r"
    parts = plan_parts(text, "gsm7", opts, ref=7)
    fill = fill_bits_after(udh)
    read = [_as_a_handset_reads(p.short_message[udh:], fill) for p in parts]
    assert read[0] == "x" * (per - 1) and read[1].startswith("\ry")
    assert _keeps(text, "".join(read))
    ours = b"".join(unpack_septets(p.short_message[udh:], fill) for p in parts)
    assert ours == encode_gsm7(text)


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("ref16", [False, True])
def test_the_parts_counted_are_the_parts_sent(packed: bool, ref16: bool) -> None:
    """The SMSC packs every part on the air, so the CR rule shapes the parts whatever the
    SMPP encoding; `split_sms` (what intake counts and prices) splits the same way."""
    per = 152 if ref16 else 153
    text = "x" * (per - 1) + "\r" + "y" * per  # two full parts, but part 1 ends in CR
    opts = EncodingOptions(packed=packed, concat="udh16" if ref16 else "udh8")
    parts = plan_parts(text, "gsm7", opts)
    counted = split_sms(text, "gsm7", ref16=ref16).payloads
    assert len(parts) == len(counted) == 3
    assert counted[0] == b"x" * (per - 1) and counted[1].startswith(b"\r")


def test_a_full_single_sms_ending_in_cr_stays_one_sms() -> None:
    """160 septets fill 140 octets: the second CR would need a second SMS, so it is not
    added (the spec's second CR only where it fits) and the handset drops the last CR,
    which at the end of a message shows as nothing."""
    text = "x" * 159 + "\r"
    [part] = plan_parts(text, "gsm7", EncodingOptions(packed=True))
    assert len(part.short_message) == 140
    assert _as_a_handset_reads(part.short_message) == "x" * 159


@given(
    st.lists(st.sampled_from("ab\r€"), min_size=150, max_size=500).map("".join),
    st.sampled_from(["udh8", "udh16", "sar"]),
)
# the last part full (153 septets after a 6-octet UDH and its fill bit: 140 octets) and
# ending in a wanted CR on the octet boundary, where the second CR does not fit
@example("x" * 305 + "\r", "udh8")
# the first part cut at 152 septets (never inside an ESC pair: "€" is two), the last one
# 152 septets ending in a wanted CR, filled to 140 octets by the padding CR after it
@example("a" * 152 + "€" + "a" * 149 + "\r", "udh8")
def test_packed_parts_read_back_as_the_text(text: str, concat: str) -> None:
    opts = EncodingOptions(packed=True, concat=concat)  # type: ignore[arg-type]
    parts = plan_parts(text, "gsm7", opts, ref=1)
    assert all(len(p.short_message) <= 140 for p in parts)
    ours = b""
    for p in parts:
        udh = p.short_message[0] + 1 if p.esm_class & c.ESM_UDHI else 0
        ours += unpack_septets(p.short_message[udh:], fill_bits_after(udh))
    # CR CR is CR (TS 23.038 6.1.1): a part ending in a wanted CR CR one bit before its
    # last octet does reads as one CR, as a doubled last CR does
    sent = encode_gsm7(text)
    last = parts[-1].short_message
    udh = last[0] + 1 if parts[-1].esm_class & c.ESM_UDHI else 0
    # the last part's own septets, where the text was cut (153 septets a part after an
    # 8-bit reference, 152 after a 16-bit one; SAR's UDH is the SMSC's, 6 octets)
    per, on_air = {"udh8": (153, 6), "udh16": (152, 7), "sar": (153, 6)}[concat]
    tail = chunk_septets(sent, per, fill_bits_after(on_air))[-1]
    if tail.endswith(b"\r") and fill_bits_after(udh) + 7 * len(tail) == 8 * (len(last) - udh):
        # the text's septets fill the last part to its last bit, ending in CR: that CR is
        # read as padding and dropped, as in a full single SMS (no SMS more for a CR that
        # shows as nothing at the end of a message:
        # test_a_full_single_sms_ending_in_cr_stays_one_sms). A last part one septet
        # shorter, full only with the padding CR, keeps the text's CR before it.
        sent = sent.removesuffix(b"\r")
    assert _one_cr(ours) == _one_cr(sent)


def _one_cr(septets: bytes) -> bytes:
    while b"\r\r" in septets:
        septets = septets.replace(b"\r\r", b"\r")
    return septets


def test_our_unpacking_reads_a_doubled_last_cr_as_one() -> None:
    data = pack_septets(encode_gsm7("1234567\r"))  # CR CR + a padding bit 0
    assert len(data) == 8
    assert unpack_septets(data) == encode_gsm7("1234567\r")
    # a CR that is padding (7 spare bits) is still dropped
    assert unpack_septets(pack_septets(encode_gsm7("1234567"))) == encode_gsm7("1234567")


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
