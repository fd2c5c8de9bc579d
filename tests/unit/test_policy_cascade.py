"""The cascade table: every setting at every level, the level limits, and the value checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bridge.tenants.policy import (
    CUSTOMER_ONLY,
    LEVELS,
    SETTING_NAMES,
    Policy,
    PolicyError,
    check_setting,
    describe,
    resolve,
    with_mail_level,
)
from bridge.tenants.policy_values import parse_duration, parse_send_at, parse_text, sender_id_kind

# One valid non-default value per setting (and what it becomes).
SAMPLES: dict[str, tuple[object, object]] = {
    "sender_id": ("ACME", "ACME"),
    "notify": ("all", "all"),
    "default_country": ("at", "AT"),
    "encoding": ("ucs2", "ucs2"),
    "replacement": ("smart", "smart"),
    "max_parts": (3, 3),
    "overflow": ("truncate", "truncate"),
    "subject_policy": ("subject_body", "subject_body"),
    "validity": ("2h", 7200.0),
    "cost_centre": ("4711", "4711"),
    "priority": ("express", "express"),
    "subject_separator": (": ", ": "),
    "cleaning": (["quotes"], ("quotes",)),
    "end_markers": (["##"], ("##",)),
    "strip_strings": (["[ticket]"], ("[ticket]",)),
    "notify_channel": (["html", "dsn"], ("html", "dsn")),
    "notify_address": ("ops@acme.example", "ops@acme.example"),
    "allowed_countries": (["de", "AT"], ("DE", "AT")),
    "denied_countries": (["ng"], ("NG",)),
    "rate_per_minute": (10, 10),
    "rate_per_day": (1000, 1000),
    "quiet_hours": ("21:00-08:00", "21:00-08:00"),
    "timezone": ("Europe/Berlin", "Europe/Berlin"),
    "flash": (True, True),
    "send_at": ("2026-12-01T09:00:00+01:00", "2026-12-01T08:00:00+00:00"),
    "mail_overrides": (["priority"], ("priority",)),
    "report_recipients": (["boss@acme.example"], ("boss@acme.example",)),
    "price_per_part": ("0.075  EUR", "0.075 EUR"),
}


def test_every_setting_has_a_sample() -> None:
    assert set(SAMPLES) == set(SETTING_NAMES)


@pytest.mark.parametrize("name", SETTING_NAMES)
@pytest.mark.parametrize("level", LEVELS)
def test_each_setting_at_each_level(name: str, level: str) -> None:
    value, expected = SAMPLES[name]
    levels: list[dict[str, object]] = [{} for _ in LEVELS]
    levels[LEVELS.index(level)] = {name: value}
    policy = resolve(*levels)
    if name in CUSTOMER_ONLY and level not in ("default", "customer"):
        # customer-only settings are ignored below the customer
        assert getattr(policy, name) == getattr(Policy(), name)
        assert policy.source(name) == "default"
        return
    assert getattr(policy, name) == expected
    assert policy.source(name) == level


def test_a_more_specific_level_wins_and_none_falls_through() -> None:
    policy = resolve(
        {"priority": "normal"},
        {"priority": "express"},
        {"priority": None},
        {"quiet_hours": "22:00-07:00"},
    )
    assert policy.priority == "express" and policy.source("priority") == "customer"
    assert policy.quiet_hours == "22:00-07:00" and policy.source("quiet_hours") == "user"


def test_describe_lists_every_setting_with_its_source() -> None:
    policy = resolve({}, {"sender_id": "ACME"}, None, {"notify": "none"})
    rows = {name: (value, source) for name, value, source in describe(policy)}
    assert rows["sender_id"] == ("ACME", "customer")
    assert rows["notify"] == ("none", "user")
    assert rows["encoding"] == ("auto", "default")
    assert len(rows) == len(SETTING_NAMES)


def test_the_mail_level_goes_on_top() -> None:
    base = resolve({}, {"priority": "normal"})
    policy = with_mail_level(base, {"priority": "express"})
    assert policy.priority == "express" and policy.source("priority") == "mail"
    assert with_mail_level(base, {}) is base


def test_as_dict_is_json_for_the_order_column() -> None:
    values = resolve({}, {"allowed_countries": ["DE"]}).as_dict()
    assert json.loads(json.dumps(values))["allowed_countries"] == ["DE"]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("ACME", "alphanumeric"),
        ("Shop24", "alphanumeric"),
        ("12345", "short_code"),
        ("+491701234567", "international"),
        ("491701234567", "international"),
    ],
)
def test_valid_sender_ids(value: str, kind: str) -> None:
    assert check_setting("sender_id", value) == value
    assert sender_id_kind(value) == kind


@pytest.mark.parametrize(
    "value", ["TwelveLetter", "ACME GmbH", "ACME!", "", "1234567890123456", "Müller"]
)
def test_invalid_sender_ids_say_what_is_allowed(value: str) -> None:
    with pytest.raises(PolicyError, match="up to 11 letters and digits"):
        check_setting("sender_id", value)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("notify_channel", ["fax"], "unknown values"),
        ("notify_channel", [], "at least one"),
        ("allowed_countries", ["DEU"], "2-letter ISO code"),
        ("rate_per_minute", -1, "integer from 0"),
        ("quiet_hours", "9-17", "HH:MM-HH:MM"),
        ("quiet_hours", "08:00-08:00", "the same"),
        ("timezone", "Mars/Olympus", "IANA zone"),
        ("flash", "maybe", "true or false"),
        ("send_at", "tomorrow", "date and time"),
        ("validity", "soon", "e.g. '30m'"),
        ("validity", 0, "seconds > 0"),
        ("mail_overrides", ["rate_per_day"], "unknown values"),
        ("notify_address", "nobody", "mail address"),
        ("price_per_part", "0.075", "currency code"),
        ("price_per_part", "7.5 cents", "currency code"),
        ("price_per_part", 0.075, "expected text"),
    ],
)
def test_invalid_values_are_refused(name: str, value: object, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        check_setting(name, value)


def test_customer_only_settings_are_refused_below_the_customer() -> None:
    with pytest.raises(PolicyError, match="only be set for a customer"):
        check_setting("mail_overrides", ["priority"], "user")
    assert check_setting("mail_overrides", ["priority"], "customer") == ("priority",)


def test_durations_send_at_and_command_line_text() -> None:
    assert parse_duration("90m") == 5400.0 and parse_duration(60) == 60.0
    assert parse_duration("1d") == 86400.0
    assert parse_send_at("2026-12-01 09:00", "Europe/Berlin") == "2026-12-01T08:00:00+00:00"
    assert parse_send_at(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00+00:00"
    assert parse_text("cleaning", "quotes, signature") == ["quotes", "signature"]
    assert parse_text("max_parts", "4") == 4
    assert parse_text("subject_separator", "\\n") == "\n"
    assert parse_text("subject_separator", "\\n – ") == "\n –"  # stripped, not mangled
    with pytest.raises(PolicyError, match="has a broken escape"):
        parse_text("subject_separator", "\\x")
    with pytest.raises(PolicyError, match="expected an integer from 1 to 255"):
        check_setting("max_parts", parse_text("max_parts", "9" * 5000))
    with pytest.raises(PolicyError, match="expected an integer from 0 to 10000000"):
        check_setting("rate_per_day", "9" * 5000)
    with pytest.raises(PolicyError, match="expected an integer from 1 to 255"):
        check_setting("max_parts", parse_text("max_parts", "²"))  # a digit int() refuses
