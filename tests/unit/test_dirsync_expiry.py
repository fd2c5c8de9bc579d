"""Unit tests: AD's `accountExpires` (a Windows FILETIME) disables an account whose time has
passed, like the ACCOUNTDISABLE bit; "never", future, invalid and out-of-range values."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.errors import ConfigError
from dirsync.config import parse_config
from dirsync.mapping import (
    PRESETS,
    ExpiryState,
    account_expiry,
    filetime,
    map_entry,
    resolve_names,
    with_overrides,
)
from dirsync.model import ChangeKind, SourceUser, StoredUser
from dirsync.plan import make_plan
from dirsync.safety import Limits, Refused, check_plan

AD = PRESETS["ad"]
GUID = uuid.UUID("0d7e4c52-5a56-4c1b-8f0e-6e1f4b1c2a3d")
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # the run's time
UNIX_EPOCH_FILETIME = 116_444_736_000_000_000  # 1970-01-01 in 100-ns ticks since 1601
NEVER = 9_223_372_036_854_775_807  # 0x7FFFFFFFFFFFFFFF


def ticks(at: datetime) -> int:
    """`at` as AD writes it: 100-ns intervals since 1601-01-01 UTC."""
    return UNIX_EPOCH_FILETIME + int(at.timestamp()) * 10_000_000


def ad_entry(**extra: list[bytes]) -> dict[str, list[bytes]]:
    raw: dict[str, list[bytes]] = {
        "objectGUID": [GUID.bytes_le],
        "mail": [b"carla.c@corp.example"],
        "displayName": [b"Carla C"],
        "userAccountControl": [b"512"],
    }
    raw.update(extra)
    return raw


def expires(at: datetime | int | str) -> dict[str, list[bytes]]:
    value = ticks(at) if isinstance(at, datetime) else at
    return ad_entry(accountExpires=[str(value).encode()])


# --- reading the FILETIME --------------------------------------------------------------


def test_filetime_reads_ads_ticks_as_utc() -> None:
    assert filetime(str(UNIX_EPOCH_FILETIME)) == datetime(1970, 1, 1, tzinfo=UTC)
    # 2026-11-30 23:00 UTC ("end of 30 Nov" in Berlin), as AD stores it
    assert filetime("134405532000000000") == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert filetime(" 134405532000000000 ") == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "0",  # AD: never set
        str(NEVER),  # AD: "never expires"
        "2650467744000000000",  # 10000-01-01: beyond any datetime, so never
        "9223372036854775806",
        "18446744073709551615",  # an unsigned 64-bit maximum
        "1" + "0" * 40,
    ],
)
def test_never_and_out_of_range_values_never_expire(value: str) -> None:
    assert filetime(value) is None
    assert account_expiry(value, NOW).state is ExpiryState.NEVER


@pytest.mark.parametrize("value", ["soon", "", "-1", "12a", "1.5e17", "0x7FFFFFFFFFFFFFFF", "١٢"])
def test_a_value_that_is_no_whole_number_is_invalid(value: str) -> None:
    with pytest.raises(ValueError):
        filetime(value)
    got = account_expiry(value, NOW)
    assert (got.state, got.value) == (ExpiryState.INVALID, value)


def test_expired_at_or_before_the_runs_time_later_after_it() -> None:
    assert account_expiry(None, NOW).state is ExpiryState.NEVER  # no such value on the entry
    at_now = account_expiry(str(ticks(NOW)), NOW)
    assert (at_now.state, at_now.at) == (ExpiryState.EXPIRED, NOW)
    past = account_expiry(str(ticks(NOW - timedelta(seconds=1))), NOW)
    assert past.state is ExpiryState.EXPIRED
    later = account_expiry(str(ticks(NOW) + 1), NOW)  # 100 ns after the run's time
    assert later.state is ExpiryState.LATER


# --- the mapping -----------------------------------------------------------------------


def test_an_expired_account_is_disabled_and_says_why() -> None:
    user, problems = map_entry(
        "cn=C", expires(datetime(2026, 11, 30, 23, 0, tzinfo=UTC)), AD, region="DE", now=NOW
    )
    assert problems == []
    assert user is not None and user.enabled is False and "enabled" not in user.keep
    assert user.why_disabled == "account expired on 2026-11-30 23:00 UTC (accountExpires)"


@pytest.mark.parametrize("value", [0, NEVER, "2650467744000000000"])
def test_never_expiring_accounts_stay_enabled(value: int | str) -> None:
    user, problems = map_entry("cn=C", expires(value), AD, region="DE", now=NOW)
    assert problems == [] and user is not None and user.enabled and user.why_disabled == ""


def test_a_future_expiry_and_none_at_all_stay_enabled() -> None:
    for raw in (expires(NOW + timedelta(days=1)), ad_entry()):
        user, problems = map_entry("cn=C", raw, AD, region="DE", now=NOW)
        assert problems == [] and user is not None and user.enabled


def test_the_runs_time_decides_not_the_clock() -> None:
    raw = expires(datetime(2030, 1, 1, tzinfo=UTC))
    user, _ = map_entry("cn=C", raw, AD, region="DE", now=datetime(2030, 1, 1, tzinfo=UTC))
    assert user is not None and not user.enabled


def test_an_invalid_expiry_is_reported_and_keeps_the_enabled_state() -> None:
    user, problems = map_entry("cn=C", expires("soon"), AD, region="DE", now=NOW)
    assert user is not None and "enabled" in user.keep and not user.enabled
    assert [p.message for p in problems] == [
        "accountExpires 'soon' is not a time (a FILETIME: a whole number of 100-ns intervals "
        "since 1601, 0 or 9223372036854775807 for never); enabled state left unchanged "
        "(a new user is not added)"
    ]


def test_an_invalid_expiry_of_a_disabled_account_changes_nothing() -> None:
    raw = {**expires("soon"), "userAccountControl": [b"514"]}
    user, problems = map_entry("cn=C", raw, AD, region="DE", now=NOW)
    assert user is not None and not user.enabled and "enabled" not in user.keep
    assert [p.message.rsplit("; ", 1)[1] for p in problems] == ["ignored (the account is disabled)"]


def test_an_expired_account_is_disabled_even_when_its_flag_is_unknown() -> None:
    raw = {**expires(NOW - timedelta(days=3)), "userAccountControl": []}
    user, problems = map_entry("cn=C", raw, AD, region="DE", now=NOW)
    assert problems == [] and user is not None and not user.enabled and not user.keep


def test_expiry_also_applies_to_the_filter_modes_flag() -> None:
    amap = with_overrides(AD, enabled="filter", enabled_filter="(x=y)")
    raw = expires(NOW - timedelta(days=1))
    user, _ = map_entry("cn=C", raw, amap, region="DE", now=NOW, enabled=True)
    assert user is not None and not user.enabled and user.why_disabled


def test_without_an_expiry_attribute_nothing_expires() -> None:
    amap = with_overrides(AD, expires_attribute=None)
    user, problems = map_entry("cn=C", expires("soon"), amap, region="DE", now=NOW)
    assert problems == [] and user is not None and user.enabled
    assert "accountExpires" not in amap.attributes()
    assert "accountExpires" in AD.attributes()  # requested from the directory


def test_another_expiry_attribute() -> None:
    amap = with_overrides(AD, expires_attribute="extensionAttribute9", expires_named=True)
    raw = ad_entry(extensionAttribute9=[str(ticks(NOW - timedelta(days=1))).encode()])
    user, _ = map_entry("cn=C", raw, amap, region="DE", now=NOW)
    assert user is not None and not user.enabled
    assert user.why_disabled.endswith("UTC (extensionAttribute9)")
    assert "extensionAttribute9" in amap.attributes()


# --- the schema: the default is optional, a named one is not -----------------------------

SCHEMA_NAMES = ("objectGUID", "mail", "proxyAddresses", "displayName", "cn", "mobile")


def plain_schema(name: str) -> str | None:
    """A directory without Exchange or accountExpires (plain OpenLDAP with an AD id)."""
    return next(
        (n for n in (*SCHEMA_NAMES, "userAccountControl") if n.lower() == name.lower()), None
    )


def ad_schema(name: str) -> str | None:
    return "accountExpires" if name.lower() == "accountexpires" else plain_schema(name)


def test_the_default_expiry_attribute_is_left_out_where_the_schema_lacks_it() -> None:
    assert resolve_names(AD, AD, plain_schema).expires_attribute is None
    spelled = with_overrides(AD, expires_attribute="ACCOUNTEXPIRES")
    assert resolve_names(spelled, AD, ad_schema).expires_attribute == "accountExpires"


def test_a_named_expiry_attribute_the_schema_lacks_is_a_config_error() -> None:
    named = with_overrides(AD, expires_attribute="accountExpiry", expires_named=True)
    with pytest.raises(ConfigError) as err:
        resolve_names(named, AD, ad_schema)
    assert str(err.value) == (
        "ldap.mapping.expires_attribute: the directory's schema has no attribute "
        "'accountExpiry'; write the name the directory's schema uses, or \"\" to read no "
        "expiry time"
    )
    also_default = with_overrides(AD, expires_named=True)  # written out in the config
    with pytest.raises(ConfigError):
        resolve_names(also_default, AD, plain_schema)


# --- the setting -----------------------------------------------------------------------


def ldap_config(preset: str = "ad", **mapping: Any) -> dict[str, Any]:
    return {
        "customer": "acme",
        "ldap": {
            "url": "ldaps://dc.corp.example",
            "bind_dn": "cn=svc",
            "password_env": "PW",
            "base_dns": ["dc=corp,dc=example"],
            "preset": preset,
            "mapping": mapping,
        },
    }


def mapping_of(preset: str = "ad", **mapping: Any) -> tuple[str | None, bool]:
    cfg = parse_config(ldap_config(preset, **mapping))
    assert cfg.ldap is not None
    return cfg.ldap.mapping.expires_attribute, cfg.ldap.mapping.expires_named


def test_the_setting_defaults_on_with_the_uac_mode_only() -> None:
    assert mapping_of() == ("accountExpires", False)
    assert mapping_of("openldap") == (None, False)
    assert mapping_of("openldap", enabled="uac", enabled_attribute="employeeType") == (
        "accountExpires",
        False,
    )
    assert mapping_of(enabled="attribute", enabled_attribute="employeeType") == (None, False)


def test_the_setting_turns_it_off_or_names_another_attribute() -> None:
    assert mapping_of(expires_attribute="") == (None, False)
    assert mapping_of(expires_attribute=" extensionAttribute9 ") == ("extensionAttribute9", True)
    assert mapping_of("openldap", expires_attribute="shadowExpire2") == ("shadowExpire2", True)


@pytest.mark.parametrize("value", [False, 0, ["accountExpires"]])
def test_a_bad_setting_says_what_to_write(value: object) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(ldap_config(expires_attribute=value))
    assert str(err.value).startswith(
        "ldap.mapping.expires_attribute: expected the name of the attribute holding the "
        "account's expiry time"
    )
    assert '"" to read none, got ' + repr(value) in str(err.value)


# --- the plan: the same disable, with its reason, under the same caps -------------------


def source(n: int, *, expired: bool) -> SourceUser:
    why = "account expired on 2026-11-30 23:00 UTC (accountExpires)" if expired else ""
    return SourceUser(
        external_id=f"id-{n}",
        address=f"u{n}@corp.example",
        enabled=not expired,
        why_disabled=why,
    )


def stored(u: SourceUser, rid: int) -> StoredUser:
    return StoredUser(rid, u.external_id, u.address, u.aliases, "", None, None, None, None,
                      True, None)  # fmt: skip


def test_the_report_says_why_an_expired_user_is_disabled() -> None:
    users = [source(0, expired=True), source(1, expired=False)]
    p = make_plan(users, [stored(u, i) for i, u in enumerate(users)], {}, now=NOW,
                  retention_days=30)  # fmt: skip
    assert [c.describe() for c in p.changes] == [
        "update  u0@corp.example [id-0] (account expired on 2026-11-30 23:00 UTC "
        "(accountExpires)): enabled: True → False"
    ]
    assert p.counts()["disabled"] == 1 and p.changes[0].kind is ChangeKind.UPDATE
    # a user whose row is already disabled is unchanged: no reason without a change
    again = make_plan(users[:1], [replace(stored(users[0], 0), enabled=False)], {}, now=NOW,
                      retention_days=30)  # fmt: skip
    assert again.changes == [] and again.unchanged == 1


def test_mass_expiry_is_capped_like_mass_disabling() -> None:
    users = [source(i, expired=i < 60) for i in range(100)]
    p = make_plan(users, [stored(u, i) for i, u in enumerate(users)], {}, now=NOW,
                  retention_days=30)  # fmt: skip
    assert p.disables == 60
    with pytest.raises(Refused) as err:
        check_plan(p, Limits(), allow_mass_changes=False)
    assert "disable 60 users, more than max_disable_count=50" in str(err.value)
    check_plan(p, Limits(), allow_mass_changes=True)
