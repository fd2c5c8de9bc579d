"""Unit tests: the planner (adds, updates, disables, deletes, conflicts) and the safety caps."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dirsync.exclusions import Exclusions
from dirsync.model import ChangeKind, Plan, Problem, SourceUser, StoredUser
from dirsync.plan import make_plan
from dirsync.safety import Limits, Refused, check_plan, check_source

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def src(n: int, **kw: object) -> SourceUser:
    base = SourceUser(
        external_id=f"id-{n}",
        address=f"u{n}@corp.example",
        display_name=f"User {n}",
        mobile=f"+4917000000{n:02d}",
        sender_id="CORP",
        cost_centre=f"CC{n}",
        profile="sales",
        ref=f"cn=u{n}",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def row(u: SourceUser, rid: int, **kw: object) -> StoredUser:
    base = StoredUser(
        id=rid,
        external_id=u.external_id,
        address=u.address,
        aliases=u.aliases,
        display_name=u.display_name,
        mobile=u.mobile,
        sender_id=u.sender_id,
        cost_centre=u.cost_centre,
        profile=u.profile,
        enabled=u.enabled,
        disabled_at=None,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def plan(source: list[SourceUser], stored: list[StoredUser], **kw: object) -> Plan:
    taken = kw.pop("taken", {})
    return make_plan(source, stored, taken, now=NOW, retention_days=30, **kw)  # type: ignore[arg-type]


def kinds(p: Plan) -> list[tuple[str, str]]:
    return [(c.kind.value, c.address) for c in p.changes]


def test_first_run_adds_everyone_and_second_is_a_noop() -> None:
    users = [src(i) for i in range(3)]
    p = plan(users, [])
    assert kinds(p) == [("add", f"u{i}@corp.example") for i in range(3)]
    p2 = plan(users, [row(u, i + 1) for i, u in enumerate(users)])
    assert p2.empty and p2.unchanged == 3
    assert p2.counts()["unchanged"] == 3


def test_updates_show_before_and_after() -> None:
    u = src(1)
    changed = replace(u, mobile="+491709999999", aliases=frozenset({"x@corp.example"}))
    p = plan([changed], [row(u, 7)])
    [c] = p.changes
    assert c.kind is ChangeKind.UPDATE and c.user_id == 7
    assert {f.name for f in c.fields} == {"mobile", "aliases"}
    text = c.describe()
    assert "+491700000001 → +491709999999" in text and "{x@corp.example}" in text


def test_keep_fields_are_not_touched() -> None:
    u = src(1)
    p = plan([replace(u, mobile=None, keep=frozenset({"mobile"}))], [row(u, 1)])
    assert p.empty


def test_disabled_in_directory_disables_and_reenables() -> None:
    u = src(1)
    p = plan([replace(u, enabled=False)], [row(u, 1)])
    [c] = p.changes
    assert c.kind is ChangeKind.UPDATE and c.fields[0].name == "enabled"
    assert p.disables == 1
    p = plan([u], [row(u, 1, enabled=False, disabled_at=NOW)])
    [c] = p.changes
    assert c.fields[0].after is True and p.disables == 0


def test_new_disabled_users_are_not_added() -> None:
    assert plan([src(1, enabled=False)], []).empty


def test_missing_rows_are_disabled_then_deleted_after_retention() -> None:
    u = src(1)
    p = plan([src(2)], [row(u, 1), row(src(2), 2)])
    assert kinds(p) == [("disable", "u1@corp.example")]
    recent = row(u, 1, enabled=False, disabled_at=NOW - timedelta(days=29))
    assert plan([src(2)], [recent, row(src(2), 2)]).empty
    old = row(u, 1, enabled=False, disabled_at=NOW - timedelta(days=31))
    assert kinds(plan([src(2)], [old, row(src(2), 2)])) == [("delete", "u1@corp.example")]
    p = make_plan([src(2)], [old, row(src(2), 2)], {}, now=NOW, retention_days=0)
    assert p.empty  # 0 = never delete


def test_stable_id_not_mail_is_the_key() -> None:
    u = src(1)
    renamed = replace(u, address="new@corp.example")
    [c] = plan([renamed], [row(u, 1)]).changes
    assert c.kind is ChangeKind.UPDATE and c.fields[0].after == "new@corp.example"
    # same mail, new id: the old row is disabled and releases the address
    recreated = replace(u, external_id="id-new")
    p = plan([recreated], [row(u, 1)])
    assert kinds(p) == [("add", "u1@corp.example"), ("disable", "u1@corp.example")]
    disable = p.of_kind(ChangeKind.DISABLE)[0]
    assert disable.fields[0].after == "u1@corp.example#retired-1"


def test_duplicate_addresses_are_assigned_to_nobody() -> None:
    a = src(1, aliases=frozenset({"shared@corp.example"}))
    b = src(2, aliases=frozenset({"shared@corp.example"}))
    c = src(3, address="shared@corp.example")
    p = plan([a, b, c], [])
    adds = {ch.address: ch.user for ch in p.of_kind(ChangeKind.ADD)}
    assert set(adds) == {"u1@corp.example", "u2@corp.example"}
    assert all(u is not None and not u.aliases for u in adds.values())
    assert any("shared@corp.example" in pr.ref for pr in p.problems)


def test_conflicted_primary_disables_an_existing_user() -> None:
    a, b = src(1), src(2, address="u1@corp.example")
    p = plan([a, b], [row(a, 1)])
    [c] = p.changes
    assert c.kind is ChangeKind.UPDATE and "conflict" in c.reason
    names = {f.name: f.after for f in c.fields}
    assert names == {"address": "u1@corp.example#retired-1", "enabled": False}


def test_enabled_users_win_addresses_over_disabled_ones() -> None:
    old = src(1)
    new = src(2, address="u1@corp.example")
    p = plan([replace(old, enabled=False), new], [row(old, 1)])
    assert ("add", "u1@corp.example") in kinds(p)
    upd = next(c for c in p.changes if c.user_id == 1)
    address = {f.name: f.after for f in upd.fields}["address"]
    assert isinstance(address, str) and address.endswith("#retired-1")


def test_foreign_addresses_are_never_taken() -> None:
    a = src(1, aliases=frozenset({"boss@corp.example"}))
    b = src(2, address="manual@corp.example")
    p = plan([a, b], [], taken={"boss@corp.example": "user 9", "manual@corp.example": "user 8"})
    [add] = p.of_kind(ChangeKind.ADD)
    assert add.address == "u1@corp.example" and add.user is not None and not add.user.aliases
    assert len(p.problems) == 2


def test_exclusions_leave_rows_alone() -> None:
    a, b = src(1), src(2)
    excl = Exclusions.build(addresses=["U1@corp.example"], patterns=[r"^svc-"])
    p = plan([b, src(3, address="svc-backup@corp.example")], [row(a, 1)], exclusions=excl)
    assert kinds(p) == [("add", "u2@corp.example")]
    assert p.excluded == 2
    excl = Exclusions.build(ids=["ID-1"])
    assert plan([], [row(a, 1)], exclusions=excl).changes == []


def test_duplicate_ids_keep_the_first() -> None:
    p = plan([src(1), src(1, address="other@corp.example")], [])
    assert kinds(p) == [("add", "u1@corp.example")]
    assert "duplicate id" in p.problems[0].message


def test_alias_moves_between_users_in_one_run() -> None:
    a = src(1, aliases=frozenset({"team@corp.example"}))
    b = src(2)
    p = plan(
        [replace(a, aliases=frozenset()), replace(b, aliases=a.aliases)], [row(a, 1), row(b, 2)]
    )
    assert len(p.of_kind(ChangeKind.UPDATE)) == 2


def test_safety_caps() -> None:
    stored = [row(src(i), i + 1) for i in range(100)]
    source = [src(i) for i in range(60)]
    p = plan(source, stored)
    assert p.disables == 40
    limits = Limits(max_disable_count=50, max_disable_percent=10)
    with pytest.raises(Refused) as err:
        check_plan(p, limits, allow_mass_changes=False)
    assert err.value.kind == "mass_change" and "40 of 100" in str(err.value)
    check_plan(p, limits, allow_mass_changes=True)
    with pytest.raises(Refused, match="max_disable_count=10"):
        check_plan(
            p, Limits(max_disable_count=10, max_disable_percent=100), allow_mass_changes=False
        )
    small = plan([src(i) for i in range(98)], stored)
    check_plan(small, limits, allow_mass_changes=False)


def test_min_users_is_not_overridable() -> None:
    with pytest.raises(Refused, match="0 users"):
        check_source(0, Limits(min_users=0))
    p = plan([src(1)], [])
    with pytest.raises(Refused, match="min_users=5"):
        check_plan(p, Limits(min_users=5), allow_mass_changes=True)


def test_an_unknown_enabled_state_keeps_the_stored_one() -> None:
    u = src(1)
    unknown = replace(u, enabled=False, keep=frozenset({"enabled"}))
    assert plan([unknown], [row(u, 1)]).empty  # stays enabled, not disabled
    assert plan([unknown], [row(u, 1, enabled=False, disabled_at=NOW)]).empty
    assert plan([unknown], []).empty  # a new user whose state is unknown is not added


def test_a_held_entry_leaves_its_row_as_it_is() -> None:
    u, other = src(1, aliases=frozenset({"x1@corp.example"})), src(2)
    held = [Problem("cn=u1", "no valid mail address", held_id=u.external_id)]
    p = plan([other], [row(u, 1), row(other, 2)], problems=held)
    assert p.empty and p.disables == 0 and p.unchanged == 2
    # nobody else gets its addresses meanwhile
    taker = src(3, address=u.address, aliases=frozenset({"x1@corp.example"}))
    p = plan([other, taker], [row(u, 1), row(other, 2)], problems=held)
    assert kinds(p) == [] and len(p.problems) == 2
    assert "a user whose entry has no valid mail address" in p.problems[1].message
    # an entry read twice, once usable: the usable one counts
    p = plan([replace(u, display_name="New")], [row(u, 1)], problems=held)
    assert kinds(p) == [("update", u.address)]


def test_mass_emptied_fields_are_capped_like_disables() -> None:
    users = [src(i, aliases=frozenset({f"x{i}@corp.example"})) for i in range(100)]
    stored = [row(u, i + 1) for i, u in enumerate(users)]
    limits = Limits(max_disable_count=50, max_disable_percent=10)
    for field, value in (("mobile", None), ("aliases", frozenset()), ("sender_id", None),
                         ("cost_centre", None), ("profile", None), ("profile", "vip")):  # fmt: skip
        losing = [replace(u, **{field: value}) for u in users[:60]]  # type: ignore[arg-type]
        p = plan(losing + users[60:], stored)
        assert p.emptied == 60 and p.disables == 0, field
        with pytest.raises(Refused) as err:
            check_plan(p, limits, allow_mass_changes=False)
        assert err.value.kind == "mass_change", field
        assert str(err.value).startswith(
            "the run would empty the aliases, mobile, sender ID or cost centre of, or change "
            "the profile of, 60 users, more than max_disable_count=50; nothing changed "
            "(re-run with --allow-mass-changes if this is intended)"
        )
        check_plan(p, limits, allow_mass_changes=True)
    # the percent cap; and new values or other fields are not losses
    p = plan([replace(u, mobile=None) for u in users[:20]] + users[20:], stored)
    with pytest.raises(Refused, match=r"change 20 of 100 users \(20.0 %\)"):
        check_plan(p, limits, allow_mass_changes=False)
    changed = [replace(u, mobile="+491709999999", display_name="New", cost_centre="CC-new")
               for u in users]  # fmt: skip
    p = plan(changed, stored)
    assert p.emptied == 0 and len(p.changes) == 100
    check_plan(p, limits, allow_mass_changes=False)
