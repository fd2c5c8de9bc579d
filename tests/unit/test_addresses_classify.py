"""classify_number gives what the two-call form (is_valid_number, then number_type) gives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneNumberFormat,
    PhoneNumberType,
    re_util,
    shortnumberinfo,
)

from bridge.intake.addresses import NUMBERS_KEPT, classify_number

_MOBILE = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
_PREMIUM = {PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST}


def _two_calls(text: str, country: str) -> tuple[str, str] | None:
    """The former form: validity and type computed separately."""
    digits = "".join(c for c in text if c not in " -./()")
    if not digits or not digits.lstrip("+").isdigit() or not 3 <= len(digits.lstrip("+")) <= 17:
        return None
    if digits.count("+") > 1 or ("+" in digits and not digits.startswith("+")):
        return None
    region = country.upper()
    if not digits.startswith(("+", "0")) and len(digits) <= 6:
        short = phonenumbers.parse(digits, region)
        if shortnumberinfo.is_valid_short_number_for_region(short, region):
            return digits, "short_code"
        return None
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif not digits.startswith(("+", "0")):
        digits = "+" + digits
    try:
        number = phonenumbers.parse(digits, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    kind = phonenumbers.number_type(number)
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if kind in _MOBILE:
        return e164, "mobile"
    if kind in _PREMIUM:
        return e164, "premium"
    return None


def _outcome(fn: Callable[[str, str], tuple[str, str] | None], text: str, country: str) -> object:
    """The result, or the exception's type and message (a short code may not parse)."""
    try:
        return fn(text, country)
    except NumberParseException as exc:
        return type(exc), str(exc)


def _spellings() -> list[tuple[str, str]]:
    """Example numbers of every type of every region (and non-geographic ones), written
    internationally, nationally, with 00, without a prefix, and with a digit too many or
    too few; short codes; +1 numbers of the shared NANPA region."""
    out: list[tuple[str, str]] = []
    regions = sorted(phonenumbers.SUPPORTED_REGIONS)
    types = [t for t in vars(PhoneNumberType).values() if isinstance(t, int)]
    for region in regions:
        for kind in types:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
            national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
            for text in (e164, "00" + e164[1:], e164[1:], e164 + "7", e164[:-1], national):
                out.append((text, region))
                out.append((text, "DE"))
                out.append((text, "US"))
        for short in ("112", "7726", "33669", "85055", "999999", "1234"):
            out.append((short, region))
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        number = phonenumbers.example_number_for_non_geo_entity(code)
        if number is not None:
            e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
            out += [(e164, "DE"), (e164 + "1", "DE"), (e164[:-1], "DE")]
    for area in range(200, 1000, 7):  # NANPA: one calling code, many regions
        for rest in ("5550123", "2345678", "9001234"):
            out += [(f"+1{area}{rest}", "US"), (f"1{area}{rest}", "CA"), (f"{area}{rest}", "US")]
    out += [("", "DE"), ("+", "DE"), ("++491701234567", "DE"), ("+4917012345678901", "DE")]
    return out


def test_one_type_computation_gives_the_two_call_results() -> None:
    spellings = _spellings()
    assert len(spellings) > 10_000
    found = {"mobile": 0, "premium": 0, "short_code": 0, None: 0}
    for text, country in spellings:
        want, got = _outcome(_two_calls, text, country), _outcome(classify_number, text, country)
        assert got == want, (text, country)
        found[want[1] if isinstance(want, tuple) and want[1] in found else None] += 1
    assert all(found.values()), found  # every outcome is covered


def test_the_pattern_cache_gives_what_fresh_compilation_gives(monkeypatch: Any) -> None:
    """With phonenumbers' pattern cache on (as every bridge process runs), the same results."""
    spellings = _spellings()
    classify = classify_number.__wrapped__  # every spelling classified, none answered as kept
    monkeypatch.setattr(re_util, "_COMPILED_PATTERNS", None)  # off: re.compile each time
    want = [_outcome(classify, text, country) for text, country in spellings]
    monkeypatch.setattr(re_util, "_COMPILED_PATTERNS", {})  # on, empty
    assert [_outcome(classify, t, c) for t, c in spellings] == want
    assert len(re_util._COMPILED_PATTERNS) > 100  # type: ignore[attr-defined]  # it was used
    assert [_outcome(classify, t, c) for t, c in spellings] == want  # and when warm


def test_kept_classifications_are_what_classifying_again_gives() -> None:
    fresh = classify_number.__wrapped__  # the function without the kept answers
    everything = _spellings()
    for start in range(0, len(everything), NUMBERS_KEPT):  # each slice fits what is kept
        spellings = everything[start : start + NUMBERS_KEPT]
        classify_number.cache_clear()
        first = [_outcome(classify_number, text, country) for text, country in spellings]
        kept = [_outcome(classify_number, text, country) for text, country in spellings]
        assert first == kept == [_outcome(fresh, text, country) for text, country in spellings]
        info = classify_number.cache_info()
        assert info.hits >= info.currsize > len(spellings) // 2  # answered from what was kept
