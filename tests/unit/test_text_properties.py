"""Hypothesis properties of planning and splitting, for any text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.text import MimeTooComplex, TextRejected, decode_gsm7, extract, plan_sms, split_sms
from bridge.text.clean import CleanRules, clean
from bridge.text.shift_tables import BASIC_TABLE, EXTENSION_TABLE
from bridge.text.sms import SINGLE_LIMIT, part_limit
from bridge.values import Encoding

GSM_CHARS = [c for c in BASIC_TABLE if c != "\x1b"] + list(EXTENSION_TABLE.values())
gsm_text = st.text(alphabet=st.sampled_from(GSM_CHARS), max_size=800)
mixed_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(GSM_CHARS),
        st.sampled_from(list("’“”–—…\u00a0áçí😀🇩🇪\u200d\u0301яж中")),
        st.characters(codec="utf-8"),
    ),
    max_size=600,
)


def _decode(payloads: tuple[bytes, ...], encoding: Encoding) -> str:
    if encoding == "gsm7":
        return "".join(decode_gsm7(p) for p in payloads)
    return b"".join(payloads).decode("utf-16-be")


def _check_parts(payloads: tuple[bytes, ...], encoding: Encoding, ref16: bool) -> None:
    one = len(payloads) == 1
    limit = SINGLE_LIMIT[encoding] if one else part_limit(encoding, ref16=ref16)
    for p in payloads:
        assert (len(p) if encoding == "gsm7" else len(p) // 2) <= limit
        assert p or len(payloads) == 1
        if encoding == "gsm7":
            # no orphan ESC at the end of a part
            trailing = len(p) - len(p.rstrip(b"\x1b"))
            assert trailing % 2 == 0
        else:
            assert len(p) % 2 == 0
            assert not 0xD800 <= int.from_bytes(p[-2:], "big") <= 0xDBFF
            assert not 0xDC00 <= int.from_bytes(p[:2], "big") <= 0xDFFF


@settings(max_examples=300)
@given(gsm_text, st.booleans())
def test_gsm7_split_round_trips(text: str, ref16: bool) -> None:
    seg = split_sms(text, "gsm7", ref16=ref16)
    _check_parts(seg.payloads, "gsm7", ref16)
    assert _decode(seg.payloads, "gsm7") == text.replace("ç", "Ç")
    assert seg.units == sum(len(p) for p in seg.payloads)


@settings(max_examples=300)
@given(mixed_text, st.booleans())
def test_ucs2_split_round_trips(text: str, ref16: bool) -> None:
    seg = split_sms(text, "ucs2", ref16=ref16)
    _check_parts(seg.payloads, "ucs2", ref16)
    assert _decode(seg.payloads, "ucs2") == text


@settings(max_examples=400)
@given(
    mixed_text,
    st.sampled_from(["ucs2", "smart", "simple"]),
    st.sampled_from(["auto", "gsm7", "ucs2"]),
    st.sampled_from(["truncate", "reject"]),
    st.integers(min_value=1, max_value=4),
    st.booleans(),
)
def test_plan_then_split_decodes_to_planned_text(
    text: str, replacement: str, encoding: str, overflow: str, max_parts: int, ref16: bool
) -> None:
    try:
        plan = plan_sms(
            text,
            replacement=replacement,  # type: ignore[arg-type]
            encoding=encoding,  # type: ignore[arg-type]
            overflow=overflow,  # type: ignore[arg-type]
            max_parts=max_parts,
            ref16=ref16,
        )
    except TextRejected as err:
        assert err.kind in ("no_text", "too_long")
        assert err.kind != "too_long" or overflow == "reject"
        return
    seg = split_sms(plan.text, plan.encoding, ref16=ref16)
    assert _decode(seg.payloads, plan.encoding) == plan.text
    assert seg.parts == plan.parts <= max_parts
    assert seg.units == plan.units
    _check_parts(seg.payloads, plan.encoding, ref16)
    for before, after in plan.replaced:
        assert before not in plan.text or before in after


@settings(max_examples=200)
@given(st.binary(max_size=2000))
def test_extract_survives_any_bytes(raw: bytes) -> None:
    try:
        mail = extract(b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + raw)
    except MimeTooComplex:
        return
    assert "\r" not in mail.body and mail.body == mail.body.strip()


@settings(max_examples=200)
@given(st.text(max_size=1500))
def test_clean_never_raises_and_normalises(body: str) -> None:
    result = clean(body, CleanRules(end_markers=("##",)))
    assert result.text == result.text.strip()
    assert all(line == line.rstrip() for line in result.text.split("\n"))
    assert "\n\n\n" not in result.text
