"""Send times (send_at, quiet hours in the recipient's zone) and list personalisation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.errors import Reject
from bridge.intake.fanout import ListTarget, fan_out, personalise
from bridge.intake.schedule import recipient_zone, schedule
from bridge.lists.store import ListInfo, Member
from bridge.tenants.policy import resolve

DE = "+491701234567"  # Europe/Berlin: UTC+1 in winter
NOW = datetime(2026, 12, 1, 21, 30, tzinfo=UTC)  # 22:30 in Berlin


def test_recipient_zone_comes_from_the_number() -> None:
    assert str(recipient_zone(DE)) == "Europe/Berlin"
    assert str(recipient_zone("+61412345678")).startswith("Australia/")


def test_quiet_hours_hold_normal_orders_until_the_window_opens() -> None:
    policy = resolve({}, {"quiet_hours": "21:00-08:00", "validity": 3600})
    next_at, expires_at = schedule(policy, DE, NOW)
    assert next_at == datetime(2026, 12, 2, 7, 0, tzinfo=UTC)  # 08:00 Berlin
    assert expires_at == NOW + timedelta(hours=1)  # validity still counts: it will expire


def test_express_orders_ignore_quiet_hours() -> None:
    policy = resolve({}, {"quiet_hours": "21:00-08:00", "priority": "express"})
    assert schedule(policy, DE, NOW)[0] == NOW


def test_outside_the_window_an_order_goes_now() -> None:
    policy = resolve({}, {"quiet_hours": "12:00-14:00"})
    assert schedule(policy, DE, NOW)[0] == NOW


def test_send_at_delays_and_moves_the_validity() -> None:
    policy = resolve({}, {"send_at": "2026-12-03T10:00:00+00:00", "validity": 60})
    next_at, expires_at = schedule(policy, DE, NOW)
    assert next_at == datetime(2026, 12, 3, 10, tzinfo=UTC)
    assert expires_at == next_at + timedelta(seconds=60)


INFO = ListInfo(1, 1, "team", "", ("city",), 3)
MEMBERS = [
    Member("+491701111111", "Anna", "Berg", {"city": "Berlin"}),
    Member("+491702222222", "Ben", "", {}, stopped=True),
    Member("+491703333333", "Cem", "Acar", {"city": "Köln"}),
]


def test_fan_out_personalises_and_skips_stopped_members() -> None:
    orders, skipped = fan_out(
        "M1",
        1,
        "Hi {first_name} in {city}",
        resolve({}),
        [(ListTarget(INFO, "team@x"), MEMBERS)],
        NOW,
    )
    assert [(o.id, o.recipient, o.text) for o in orders] == [
        ("M1.1", "+491701111111", "Hi Anna in Berlin"),
        ("M1.2", "+491703333333", "Hi Cem in Köln"),
    ]
    assert orders[1].encoding == "gsm7"
    assert skipped == [{"msisdn": "+491702222222", "name": "Ben", "reason": "opted out (STOP)"}]


def test_fan_out_skips_countries_not_allowed() -> None:
    policy = resolve({}, {"allowed_countries": ["AT"]})
    orders, skipped = fan_out("M1", 1, "Hi", policy, [(ListTarget(INFO, "t@x"), MEMBERS[:1])], NOW)
    assert orders == [] and skipped[0]["reason"] == "country not allowed"


def test_an_unknown_placeholder_refuses_the_mail() -> None:
    with pytest.raises(Reject) as err:
        fan_out("M1", 1, "Hi {nickname}", resolve({}), [(ListTarget(INFO, "t@x"), MEMBERS)], NOW)
    assert err.value.kind == "unknown_placeholder"
    assert "{nickname}" in err.value.reply and "first_name" in err.value.reply


def test_personalise_leaves_other_braces_alone() -> None:
    assert personalise("{name}: {{ x }} {", MEMBERS[0]) == "Anna Berg: {{ x }} {"


@pytest.mark.parametrize("length", [1, 70, 160, 161, 306, 307, 459, 1530, 1531])
@pytest.mark.parametrize("char", ["a", "@", "Ä"])
def test_the_fast_gsm7_plan_equals_the_text_engine(length: int, char: str) -> None:
    from bridge.intake.fanout import _fast_plan
    from bridge.text.sms import plan_sms

    text = (char + "b c") * (length // 4) + char * (length % 4)
    policy = resolve({})
    fast = _fast_plan(text, policy)
    if fast is None:
        return  # left to the engine (too long for max_parts)
    assert fast == plan_sms(text, max_parts=policy.max_parts)
