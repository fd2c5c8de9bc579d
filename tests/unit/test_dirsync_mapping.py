"""Unit tests: attribute mapping, presets, proxyAddresses, E.164, enabled flag, groups."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from bridge.errors import ConfigError
from bridge.intake.addresses import normalise_msisdn
from dirsync.groups import ProfileResolver, ProfileRule, normalise_dn
from dirsync.mapping import (
    PRESETS,
    clean_address,
    decode_id,
    map_entry,
    normalise_mobile,
    parse_proxy_addresses,
    resolve_names,
    with_overrides,
)

AD = PRESETS["ad"]
GUID = uuid.UUID("6f1c3d1e-0b7a-4a4e-9f5c-1234567890ab")
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # the run's time


def ad_entry(**extra: list[bytes]) -> dict[str, list[bytes]]:
    raw: dict[str, list[bytes]] = {
        "objectGUID": [GUID.bytes_le],
        "mail": [b"Anna.Alpha@Corp.Example"],
        "proxyAddresses": [
            b"SMTP:anna.alpha@corp.example",
            b"smtp:anna@legacy.example",
            b"X500:/o=Corp/cn=anna",
            b"sip:anna@corp.example",
        ],
        "mobile": [b"0170 1111111"],
        "displayName": [b"Anna Alpha"],
        "extensionAttribute1": [b"CORP"],
        "department": [b"CC-4711"],
        "userAccountControl": [b"512"],
    }
    raw.update(extra)
    return raw


def test_ad_entry_maps_every_field() -> None:
    user, problems = map_entry("cn=Anna", ad_entry(), AD, region="DE", now=NOW, profile="sales")
    assert problems == []
    assert user is not None
    assert user.external_id == str(GUID)
    assert user.address == "anna.alpha@corp.example"
    assert user.aliases == {"anna@legacy.example"}
    assert user.mobile == "+491701111111"
    assert user.display_name == "Anna Alpha"
    assert user.sender_id == "CORP"
    assert user.cost_centre == "CC-4711"
    assert user.profile == "sales"
    assert user.enabled is True


def test_attribute_names_are_case_insensitive() -> None:
    raw = {k.upper(): v for k, v in ad_entry().items()}
    user, _ = map_entry("x", raw, AD, region="DE", now=NOW)
    assert user is not None and user.address == "anna.alpha@corp.example"


def test_uac_bit_2_disables() -> None:
    for value, enabled in ((b"512", True), (b"514", False), (b"66048", True), (b"66050", False)):
        user, _ = map_entry("x", ad_entry(userAccountControl=[value]), AD, region="DE", now=NOW)
        assert user is not None and user.enabled is enabled, value


def test_enabled_attribute_mode() -> None:
    amap = with_overrides(
        PRESETS["openldap"],
        enabled="attribute",
        enabled_attribute="employeeType",
        disabled_values=("Disabled",),
    )
    raw = {"entryUUID": [str(GUID).encode()], "mail": [b"a@b.example"]}
    user, _ = map_entry("x", {**raw, "employeeType": [b"disabled"]}, amap, region="DE", now=NOW)
    assert user is not None and not user.enabled
    user, _ = map_entry("x", {**raw, "employeeType": [b"staff"]}, amap, region="DE", now=NOW)
    assert user is not None and user.enabled
    present = with_overrides(amap, disabled_values=(), enabled_attribute="pwdAccountLockedTime")
    user, _ = map_entry(
        "x", {**raw, "pwdAccountLockedTime": [b"000001010000Z"]}, present, region="DE", now=NOW
    )
    assert user is not None and not user.enabled


def test_filter_mode_takes_the_callers_flag() -> None:
    user, _ = map_entry("x", ad_entry(), AD, region="DE", now=NOW, enabled=False)
    assert user is not None and not user.enabled


def test_invalid_mobile_is_reported_and_kept() -> None:
    user, problems = map_entry("cn=A", ad_entry(mobile=[b"12"]), AD, region="DE", now=NOW)
    assert user is not None and user.mobile is None and "mobile" in user.keep
    assert len(problems) == 1 and "invalid mobile" in problems[0].message


def test_mobile_falls_back_to_other_mobile_never_to_telephone() -> None:
    raw = ad_entry(mobile=[], otherMobile=[b"+43 664 1234567"], telephoneNumber=[b"+4930123"])
    user, _ = map_entry("x", raw, AD, region="DE", now=NOW)
    assert user is not None and user.mobile == "+436641234567"
    raw = ad_entry(mobile=[], telephoneNumber=[b"+49 30 1234567"])
    user, _ = map_entry("x", raw, AD, region="DE", now=NOW)
    assert user is not None and user.mobile is None and not user.keep


def test_a_landline_in_mobile_does_not_hide_the_mobile_in_other_mobile() -> None:
    raw = ad_entry(mobile=[b"+49 30 12345678"], otherMobile=[b"0170 1234567"])
    user, problems = map_entry("cn=A", raw, AD, region="DE", now=NOW)
    assert user is not None and user.mobile == "+491701234567" and not user.keep
    assert [p.message for p in problems] == [
        "invalid mobile number '+49 30 12345678' (not a valid number, or not a mobile one; "
        "write it as +<country code><number>); ignored, +491701234567 used"
    ]


def test_normalise_mobile() -> None:
    assert normalise_mobile("+49 (170) 111-1111", None) == "+491701111111"
    assert normalise_mobile("0170 1111111", "DE") == "+491701111111"
    assert normalise_mobile("0170 1111111", None) is None
    assert normalise_mobile("not a number", "DE") is None


def test_mobile_numbers_read_as_the_bridge_reads_them() -> None:
    for text in ("49 170 1234567", "0049 170 1234567", "tel:+49-170-1234567", "TEL:01701234567",
                 "+49\u00a0170\u00a01234567", "0170 1234567"):  # fmt: skip
        assert normalise_mobile(text, "DE") == "+491701234567", text
        assert normalise_msisdn(text.removeprefix("tel:"), "DE") in ("+491701234567", None)
    assert normalise_mobile("49 170 1234567", None) is None  # no + and no country: unknown
    assert normalise_mobile("0049 170 1234567", None) == "+491701234567"
    # a landline, a toll-free number, digits that only look like digits: no SMS reaches them
    for text in ("+49 30 12345678", "+49 800 1234567", "+\u0664\u0669\u0661\u0667\u0660"):
        assert normalise_mobile(text, "DE") is None, text


def test_a_landline_in_mobile_is_reported_and_kept() -> None:
    user, problems = map_entry(
        "cn=A", ad_entry(mobile=[b"+49 30 12345678"]), AD, region="DE", now=NOW
    )
    assert user is not None and user.mobile is None and user.keep == {"mobile"}
    assert [p.message for p in problems] == [
        "invalid mobile number '+49 30 12345678' (not a valid number, or not a mobile one; "
        "write it as +<country code><number>); left unchanged"
    ]


def test_missing_id_or_mail_skips_the_user() -> None:
    user, problems = map_entry("cn=A", ad_entry(objectGUID=[]), AD, region="DE", now=NOW)
    assert user is None and "objectGUID" in problems[0].message
    assert problems[0].held_id is None  # no id: nothing to hold
    raw = ad_entry(mail=[], proxyAddresses=[b"smtp:x@y.example"])
    user, problems = map_entry("cn=A", raw, AD, region="DE", now=NOW)
    assert user is None and [(p.message, p.held_id) for p in problems] == [
        ("no mail; its row is left unchanged (a new user is not added)", str(GUID))
    ]


def test_an_invalid_mail_value_falls_back_to_the_next_valid_one() -> None:
    raw = ad_entry(mail=[b"anna.alpha@corp.example (mobile)"])
    user, problems = map_entry("cn=A", raw, AD, region="DE", now=NOW)
    assert user is not None and user.address == "anna.alpha@corp.example"  # SMTP: primary
    assert [p.message for p in problems] == [
        "invalid mail address 'anna.alpha@corp.example (mobile)' ignored"
    ]
    openldap = PRESETS["openldap"]
    raw = {"entryUUID": [str(GUID).encode()], "mail": [b"x y@corp.example", b"B@corp.example"]}
    user, problems = map_entry("cn=B", raw, openldap, region="DE", now=NOW)
    assert user is not None and user.address == "b@corp.example" and user.aliases == set()
    assert len(problems) == 1  # reported once, though mail is also the alias attribute


def test_an_entry_without_any_valid_address_is_held() -> None:
    raw = ad_entry(mail=[b"not-an-address"], proxyAddresses=[b"SMTP:also bad", b"X500:/o=x"])
    user, problems = map_entry("cn=A", raw, AD, region="DE", now=NOW)
    assert user is None and [(p.message, p.held_id) for p in problems] == [
        (
            "no valid mail address in ['not-an-address', 'also bad']; its row is left "
            "unchanged (a new user is not added)",
            str(GUID),
        )
    ]


def test_primary_from_proxy_when_mail_missing() -> None:
    raw = ad_entry(mail=[], proxyAddresses=[b"SMTP:Boss@Corp.Example", b"smtp:b@corp.example"])
    user, _ = map_entry("x", raw, AD, region="DE", now=NOW)
    assert user is not None and user.address == "boss@corp.example"
    assert user.aliases == {"b@corp.example"}


def test_parse_proxy_addresses() -> None:
    primary, rest = parse_proxy_addresses(["SMTP:a@x", "smtp:b@x", "X400:c", "nocolon"])
    assert primary == "a@x" and rest == ["b@x"]


def test_sender_id_and_cost_centre_validation() -> None:
    raw = ad_entry(extensionAttribute1=[b"WAY-TOO-LONG-SENDER"], department=[b"x" * 71])
    user, problems = map_entry("x", raw, AD, region="DE", now=NOW)
    assert user is not None and user.sender_id is None and user.cost_centre is None
    assert user.keep == {"sender_id", "cost_centre"}
    assert len(problems) == 2
    user, _ = map_entry(
        "x", ad_entry(extensionAttribute1=[b"+491701234567"]), AD, region="DE", now=NOW
    )
    assert user is not None and user.sender_id == "+491701234567"


def test_openldap_preset_uses_extra_mail_values_as_aliases() -> None:
    raw = {
        "entryUUID": [b"0B6A5D5E-7E0B-4C1B-9C55-3F2B0A1D2E3F"],
        "mail": [b"p@corp.example", b"Q@corp.example"],
        "cn": [b"P Person"],
        "departmentNumber": [b"42"],
    }
    user, _ = map_entry("x", raw, PRESETS["openldap"], region="DE", now=NOW)
    assert user is not None
    assert user.external_id == "0b6a5d5e-7e0b-4c1b-9c55-3f2b0a1d2e3f"
    assert user.aliases == {"q@corp.example"} and user.display_name == "P Person"
    assert user.cost_centre == "42" and user.enabled


def test_decode_id_forms() -> None:
    assert decode_id([GUID.bytes_le], "guid") == str(GUID)
    assert decode_id([("{" + str(GUID).upper() + "}").encode()], "guid") == str(GUID)
    assert decode_id([b"short"], "guid") is None
    assert decode_id([b"emp-0042"], "text") == "emp-0042"
    assert decode_id([], "text") is None


def test_clean_address() -> None:
    assert clean_address(" A@B.Example ") == "a@b.example"
    assert clean_address("a@b") is None  # a domain needs a dot (email-validator's rule)
    assert clean_address("anna@corp..example") is None
    assert clean_address("a b@c") is None
    assert clean_address("*)(uid=*") is None


def test_requested_attributes_are_deduplicated() -> None:
    names = [n.lower() for n in PRESETS["openldap"].attributes()]
    assert names.count("mail") == 1 and "entryuuid" in names
    assert "useraccountcontrol" in [n.lower() for n in AD.attributes()]


def test_normalise_dn() -> None:
    assert normalise_dn("CN=Anna Alpha , OU=Staff,DC=Corp") == "cn=anna alpha,ou=staff,dc=corp"
    assert normalise_dn(r"cn=Alpha\, Anna,dc=x") == r"cn=alpha\, anna,dc=x"


def test_profile_rules_are_ordered_and_nested() -> None:
    members = {
        "cn=Managers,ou=G": ["cn=Boss,ou=U"],
        "cn=Sales,ou=G": ["cn=Sales-EU,ou=G", "cn=Anna,ou=U"],
        "cn=Sales-EU,ou=G": ["cn=Sales-DE,ou=G"],
        "cn=Sales-DE,ou=G": ["cn=Bert,ou=U", "cn=Boss,ou=U", "cn=Sales,ou=G"],  # a cycle
    }
    rules = [ProfileRule("cn=managers,ou=g", "vip"), ProfileRule("CN=Sales,OU=G", "sales")]
    r = ProfileResolver(rules, members, default="standard")
    assert r.profile_for("cn=boss,ou=u") == "vip"
    assert r.profile_for("cn=Bert,ou=U") == "sales"
    assert r.profile_for("cn=Anna,ou=U") == "sales"
    assert r.profile_for("cn=Carl,ou=U") == "standard"
    # memberOf naming a nested group (members not read) still resolves
    assert r.profile_for("cn=Dora,ou=U", ["cn=Sales-DE,ou=G"]) == "sales"
    assert r.profile_for("cn=Dora,ou=U", ["CN=Sales,OU=G"]) == "sales"
    assert ProfileResolver([ProfileRule("cn=none", "x")], {}).missing_groups == ["cn=none"]


def test_missing_or_odd_uac_leaves_the_enabled_state_as_stored() -> None:
    for values in ([], [b"enabled"]):
        user, problems = map_entry(
            "cn=A", ad_entry(userAccountControl=values), AD, region="DE", now=NOW
        )
        assert user is not None and user.enabled is False and "enabled" in user.keep, values
        what = "missing" if not values else "not a number ('enabled')"
        assert [p.message for p in problems] == [
            f"userAccountControl {what}; enabled state left unchanged (a new user is not added)"
        ]


SCHEMA = {
    "mobile": "mobile",
    "mobiletelephonenumber": "mobile",
    "cn": "cn",
    "commonname": "cn",
    "useraccountcontrol": "userAccountControl",
    "objectguid": "objectGUID",
    "mail": "mail",
    "proxyaddresses": "proxyAddresses",
    "displayname": "displayName",
    "department": "department",
    "memberof": "memberOf",
    "othermobile": "otherMobile",
}


def canonical(name: str) -> str | None:
    return SCHEMA.get(name.lower())


def test_mapped_names_are_spelled_as_the_schema_spells_them() -> None:
    amap = with_overrides(
        AD, mobile=("mobileTelephoneNumber",), display_name=("commonName",),
        enabled_attribute="USERACCOUNTCONTROL", cost_centre="DEPARTMENT",
    )  # fmt: skip
    resolved = resolve_names(amap, AD, canonical)
    assert resolved.mobile == ("mobile",) and resolved.display_name == ("cn",)
    assert resolved.enabled_attribute == "userAccountControl"
    assert resolved.cost_centre == "department"
    # Exchange's extensionAttribute1 is only the preset's: a directory without it has none
    assert resolved.sender_id is None


def test_a_mapped_name_the_schema_does_not_know_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        resolve_names(with_overrides(AD, mobile=("mobil",)), AD, canonical)
    assert str(err.value).startswith("ldap.mapping.mobile: the directory's schema has no")
    assert "'mobil'" in str(err.value)
    openldap = PRESETS["openldap"]
    with pytest.raises(ConfigError) as err:
        resolve_names(openldap, openldap, canonical)  # no entryUUID in this schema
    assert str(err.value).startswith("ldap.mapping.id:") and "ldap.preset" in str(err.value)
    with pytest.raises(ConfigError) as err:
        resolve_names(with_overrides(AD, enabled_attribute="uac"), AD, canonical)
    assert str(err.value).startswith("ldap.mapping.enabled_attribute:")


def test_without_a_schema_the_names_stay_as_written() -> None:
    amap = with_overrides(AD, mobile=("mobileTelephoneNumber",))
    assert resolve_names(amap, AD, lambda name: name) == amap
