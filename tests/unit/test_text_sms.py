"""Splitting and planning: the TS 23.038 / smpp_and_gsm.md §3.6 vectors and policies."""

from __future__ import annotations

import pytest

from bridge.text import TextRejected, decode_gsm7, plan_sms, split_sms


def septets(payload: bytes) -> int:
    return len(payload)


def test_160_a_is_one_part() -> None:
    seg = split_sms("a" * 160, "gsm7")
    assert seg.parts == 1 and seg.units == 160 and seg.data_coding == 0x00


def test_161_a_is_two_parts_153_8() -> None:
    seg = split_sms("a" * 161, "gsm7")
    assert [septets(p) for p in seg.payloads] == [153, 8]


def test_152_a_euro_is_154_septets_one_part() -> None:
    seg = split_sms("a" * 152 + "€", "gsm7")
    assert seg.units == 154 and seg.parts == 1


def test_159_a_backslash_is_161_septets_two_parts() -> None:
    seg = split_sms("a" * 159 + "\\", "gsm7")
    assert seg.units == 161 and seg.parts == 2


def test_escape_not_orphaned() -> None:
    seg = split_sms("a" * 152 + "€" + "b" * 20, "gsm7")
    assert septets(seg.payloads[0]) == 152
    assert seg.payloads[1].startswith(b"\x1be")
    assert "".join(decode_gsm7(p) for p in seg.payloads) == "a" * 152 + "€" + "b" * 20


def test_ref16_gsm7_parts_are_152() -> None:
    seg = split_sms("a" * 161, "gsm7", ref16=True)
    assert [septets(p) for p in seg.payloads] == [152, 9]


def test_70_cyrillic_one_part() -> None:
    seg = split_sms("я" * 70, "ucs2")
    assert seg.parts == 1 and seg.units == 70 and seg.data_coding == 0x08


def test_71_cyrillic_two_parts_67_4() -> None:
    seg = split_sms("я" * 71, "ucs2")
    assert [len(p) // 2 for p in seg.payloads] == [67, 4]


def test_ref16_ucs2_parts_are_66() -> None:
    seg = split_sms("я" * 71, "ucs2", ref16=True)
    assert [len(p) // 2 for p in seg.payloads] == [66, 5]


def test_no_part_ends_on_high_surrogate() -> None:
    text = "я" * 66 + "😀" + "я" * 10
    seg = split_sms(text, "ucs2")
    assert seg.parts == 2
    for p in seg.payloads:
        assert not 0xD800 <= int.from_bytes(p[-2:], "big") <= 0xDBFF
    assert b"".join(seg.payloads).decode("utf-16-be") == text


def test_35_emoji_one_part_36_two() -> None:
    assert split_sms("😀" * 35, "ucs2").parts == 1
    assert split_sms("😀" * 36, "ucs2").parts == 2


def test_flag_and_zwj_sequences_not_cut() -> None:
    family = "👨\u200d👩\u200d👧"  # 8 units
    text = "я" * 62 + family + "я" * 10
    seg = split_sms(text, "ucs2")
    first = seg.payloads[0].decode("utf-16-be")
    assert first == "я" * 62  # the whole ZWJ sequence moved to part 2
    flags = "я" * 66 + "🇩🇪" + "я" * 10
    first = split_sms(flags, "ucs2").payloads[0].decode("utf-16-be")
    assert first == "я" * 66
    combining = "я" * 66 + "e\u0301" + "я" * 10
    first = split_sms(combining, "ucs2").payloads[0].decode("utf-16-be")
    assert first == "я" * 66


def test_plan_ucs2_policy_switches_to_ucs2() -> None:
    plan = plan_sms("Grüße “Max”", replacement="ucs2")
    assert plan.encoding == "ucs2" and plan.replaced == () and plan.text == "Grüße “Max”"
    assert plan_sms("Grüße Max", replacement="ucs2").encoding == "gsm7"
    assert plan_sms("garçon", replacement="ucs2").encoding == "ucs2"  # 0x09 shows 'Ç'


def test_plan_default_replaces_typography_only() -> None:
    text = "„Tor 4“ – ‘zu’… Lager\u00a03 • Halle\u2009B\u00adC — “ok” ‹x› « y »"
    plan = plan_sms(text)
    assert plan.encoding == "gsm7"
    assert plan.text == '"Tor 4" - \'zu\'... Lager 3 - Halle BC - "ok" \'x\' " y "'
    assert ("–", "-") in plan.replaced and ("\u00a0", " ") in plan.replaced


@pytest.mark.parametrize("letter", ["á", "ç", "ł", "Ж", "😀", "°", "½", "²"])
def test_plan_default_sends_a_real_character_as_ucs2_unchanged(letter: str) -> None:
    text = f"„Tor“ – {letter}"
    plan = plan_sms(text)
    assert plan.encoding == "ucs2" and plan.text == text and plan.replaced == ()


def test_plan_default_forced_gsm7_behaves_as_smart() -> None:
    plan = plan_sms("„Tor“ á 😀", encoding="gsm7")
    assert plan.encoding == "gsm7" and plan.text == '"Tor" a ?'


def test_typographic_outlook_text_costs_fewer_parts() -> None:
    text = ("Die Anlage in Halle 3 meldet „Störung“ – bitte sofort prüfen… " * 3).strip()
    assert plan_sms(text, replacement="ucs2").parts == 3
    plan = plan_sms(text)
    assert plan.encoding == "gsm7" and plan.parts == 2


def test_plan_smart_keeps_gsm7_letters() -> None:
    plan = plan_sms("Café – “ñandú” … á ç\u00a0x ’s ü Ä", replacement="smart")
    assert plan.encoding == "gsm7"
    assert plan.text == 'Café - "ñandu" ... a Ç x \'s ü Ä'
    assert ("–", "-") in plan.replaced and ("…", "...") in plan.replaced
    assert ("ú", "u") in plan.replaced and ("ç", "Ç") in plan.replaced


def test_plan_smart_with_emoji_goes_ucs2_unchanged() -> None:
    plan = plan_sms("Hi “you” 😀", replacement="smart")
    assert plan.encoding == "ucs2" and plan.text == "Hi “you” 😀" and plan.replaced == ()


def test_plan_smart_forced_gsm7_uses_question_mark() -> None:
    plan = plan_sms("Hi “you” 😀", replacement="smart", encoding="gsm7")
    assert plan.encoding == "gsm7" and plan.text == 'Hi "you" ?'


def test_plan_simple_uses_space() -> None:
    plan = plan_sms("a’b😀c", replacement="simple")
    assert plan.text == "a b c" and plan.encoding == "gsm7"


def test_plan_reject_names_characters() -> None:
    with pytest.raises(TextRejected) as err:
        plan_sms("Привет 😀", replacement="reject")
    assert err.value.kind == "bad_encoding"
    assert "U+041F" in err.value.detail and "😀" in err.value.detail


def test_plan_forced_ucs2() -> None:
    plan = plan_sms("plain", encoding="ucs2")
    assert plan.encoding == "ucs2" and plan.units == 5


def test_plan_no_text() -> None:
    for text in ("", "  \n\t "):
        with pytest.raises(TextRejected) as err:
            plan_sms(text)
        assert err.value.kind == "no_text"


def test_plan_too_long_rejected_with_counts() -> None:
    with pytest.raises(TextRejected) as err:
        plan_sms("a" * (153 * 11 + 1), max_parts=10)
    assert err.value.kind == "too_long"
    assert "12 SMS parts" in err.value.detail and "at most 10" in err.value.detail


def test_plan_too_long_huge_text_is_fast() -> None:
    with pytest.raises(TextRejected) as err:
        plan_sms("a" * 1_000_000)
    assert err.value.kind == "too_long"


def test_plan_truncate_at_word_with_marker() -> None:
    text = " ".join(["word"] * 100)  # 499 chars
    plan = plan_sms(text, max_parts=2, overflow="truncate")
    assert plan.truncated and plan.parts == 2 and plan.units <= 306
    assert plan.text.endswith("word...")
    assert plan_sms(text, max_parts=4, overflow="truncate").truncated is False


def test_plan_truncate_ucs2_and_one_part() -> None:
    plan = plan_sms("я" * 500, max_parts=1, overflow="truncate")
    assert plan.parts == 1 and plan.units == 70 and plan.text.endswith("...")


def test_lone_surrogate_does_not_crash() -> None:
    plan = plan_sms("a\udc80b")
    assert plan.text == "a\ufffdb" and plan.encoding == "ucs2"
