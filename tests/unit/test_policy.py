"""The settings cascade: the most specific level wins, and each value knows its source."""

from __future__ import annotations

import pytest

from bridge.tenants.policy import PolicyError, check_setting, resolve


def test_most_specific_level_wins_and_sources_are_recorded() -> None:
    policy = resolve(
        {"sender_id": "Default", "notify": "failures", "max_parts": 5},
        {"sender_id": "ACME", "default_country": "at"},
        {"notify": "none"},
        {"notify": "all", "cost_centre": "4711"},
        {"max_parts": 2},
    )
    assert (policy.sender_id, policy.notify, policy.max_parts) == ("ACME", "all", 2)
    assert policy.default_country == "AT"
    assert policy.cost_centre == "4711"
    assert dict(policy.sources) == {
        "sender_id": "customer",
        "notify": "user",
        "max_parts": "mail",
        "default_country": "customer",
        "cost_centre": "user",
    }


def test_unset_values_fall_through_and_unknown_stored_keys_are_ignored() -> None:
    policy = resolve({}, {"notify": None, "not_a_setting": 1})
    assert policy.notify == "failures"
    assert "notify" not in policy.sources


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("notify", "sometimes", "expected one of none, failures, all"),
        ("max_parts", 0, "integer from 1 to 255"),
        ("default_country", "GER", "2-letter ISO code"),
        ("validity", -5, "seconds > 0"),
        ("colour", "red", "unknown setting"),
    ],
)
def test_invalid_values_are_refused_with_a_reason(name: str, value: object, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        check_setting(name, value)


def test_as_dict_has_every_setting_but_not_the_sources() -> None:
    values = resolve({}).as_dict()
    assert "sources" not in values and values["notify"] == "failures"
