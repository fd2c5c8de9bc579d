"""dirsync against a throwaway slapd: attribute names in any spelling the schema allows, and
entries whose values cannot all be used. A value the run cannot read never disables a user
or clears a field; it is reported and the row is left as it is."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from bridge.tenants.directory_tables import SyncRun
from bridge.tenants.tables import Profile
from dirsync.run import EXIT_CONFIG, EXIT_REFUSED, run_sync
from tests.integration.test_dirsync_ldap import STAFF, engine, make_config, users  # noqa: F401
from tests.peers.slapd import ad_user, ad_users_ldif, base_ldif, guid, running

pytestmark = [
    pytest.mark.slapd,
    pytest.mark.filterwarnings("ignore:tagMap is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:typeMap is deprecated:DeprecationWarning"),
]
MODIFY_REPLACE = "MODIFY_REPLACE"  # ldap3's constant (importing ldap3 here first would warn)
MODIFY_DELETE = "MODIFY_DELETE"


def test_a_mapped_name_in_another_case_reads_the_value(
    tmp_path: Path,
    engine: Engine,  # noqa: F811
) -> None:
    ldif = base_ldif() + ad_user(0) + ad_user(1, uac=514)  # user 1 is disabled in AD
    with running(tmp_path / "ldap", ldif) as server:
        cfg = make_config(server, tmp_path, mapping={"enabled_attribute": "useraccountcontrol"})
        out = run_sync(cfg, engine)
    assert out.status == "applied", out.message
    assert str(guid(0)) in users(engine) and str(guid(1)) not in users(engine)


def test_an_alias_of_an_attribute_reads_its_values(
    tmp_path: Path,
    engine: Engine,  # noqa: F811
) -> None:
    with running(tmp_path / "ldap", ad_users_ldif(60)) as server:
        assert run_sync(make_config(server, tmp_path), engine).status == "applied"
        # RFC 4524's other name of `mobile`, and `commonName` for `cn`: slapd answers as
        # "mobile" and "cn"
        mapping = {"mobile": ["mobileTelephoneNumber"], "display_name": ["commonName"]}
        out = run_sync(make_config(server, tmp_path, mapping=mapping), engine)
    assert out.status == "unchanged", (out.message, out.plan and out.plan.counts())
    assert users(engine)[str(guid(5))].mobile == "+491701000005"


def test_a_mapped_name_the_schema_lacks_fails_the_run_with_a_config_error(
    tmp_path: Path,
    engine: Engine,  # noqa: F811
) -> None:
    with running(tmp_path / "ldap", ad_users_ldif(3)) as server:
        cfg = make_config(server, tmp_path, mapping={"mobile": ["mobil"]})
        out = run_sync(cfg, engine)
    assert out.exit_code == EXIT_CONFIG and users(engine) == {}
    assert out.message.startswith("ldap.mapping.mobile: the directory's schema has no attribute")
    with Session(engine) as s:
        run = s.execute(select(SyncRun)).scalars().one()
    assert run.status == "failed" and run.message == out.message


def test_a_missing_user_account_control_keeps_the_enabled_state(
    tmp_path: Path,
    engine: Engine,  # noqa: F811
) -> None:
    with running(tmp_path / "ldap", base_ldif() + ad_user(0) + ad_user(1)) as server:
        cfg = make_config(server, tmp_path)
        assert run_sync(cfg, engine).status == "applied"
        admin = server.admin()
        admin.modify(f"cn=User 000001,{STAFF}", {"userAccountControl": [(MODIFY_DELETE, [])]})
        out = run_sync(cfg, engine)
    assert out.status == "unchanged", out.plan and [c.describe() for c in out.plan.changes]
    assert users(engine)[str(guid(1))].enabled
    assert out.plan is not None
    assert [p.message for p in out.plan.problems] == [
        "userAccountControl missing; enabled state left unchanged (a new user is not added)"
    ]


def test_an_invalid_mail_value_never_disables_the_user(
    tmp_path: Path,
    engine: Engine,  # noqa: F811
) -> None:
    with running(tmp_path / "ldap", ad_users_ldif(30)) as server:
        cfg = make_config(server, tmp_path)
        assert run_sync(cfg, engine).status == "applied"
        admin = server.admin()
        # a typo in `mail`; proxyAddresses still holds the valid primary SMTP: address
        typo = {"mail": [(MODIFY_REPLACE, ["user000007@corp.example (mobile)"])]}
        admin.modify(f"cn=User 000007,{STAFF}", typo)
        out = run_sync(cfg, engine)
        assert out.status == "unchanged" and out.plan is not None, out.message
        assert [p.message for p in out.plan.problems] == [
            "invalid mail address 'user000007@corp.example (mobile)' ignored"
        ]
        # no valid address at all: the row is held as it is, not disabled as gone
        admin.modify(f"cn=User 000008,{STAFF}", {"mail": [(MODIFY_REPLACE, ["nobody"])]})
        admin.modify(f"cn=User 000008,{STAFF}", {"proxyAddresses": [(MODIFY_DELETE, [])]})
        out = run_sync(cfg, engine)
    assert out.status == "unchanged" and out.plan is not None, out.message
    assert out.plan.counts()["disabled"] == 0
    assert any(p.held_id == str(guid(8)) for p in out.plan.problems)
    row = users(engine)[str(guid(8))]
    assert row.enabled and row.address == "user000008@corp.example"


def test_group_of_unique_names_members_get_the_profile(
    tmp_path: Path,
    engine: Engine,  # noqa: F811
) -> None:
    groups = "ou=Groups,dc=corp,dc=example"
    people = "".join(
        f"dn: uid=p{i},{STAFF}\nobjectClass: inetOrgPerson\nuid: p{i}\ncn: P {i}\nsn: {i}\n"
        f"mail: p{i}@corp.example\n\n"
        for i in range(3)
    )
    vip = (
        f"dn: cn=VIP,{groups}\nobjectClass: groupOfUniqueNames\ncn: VIP\n"
        f"uniqueMember: uid=p0,{STAFF}\nuniqueMember: uid=p1,{STAFF}#'0101'B\n\n"
    )
    sales = (
        f"dn: cn=Sales,{groups}\nobjectClass: groupOfNames\ncn: Sales\nmember: uid=p2,{STAFF}\n\n"
    )
    ldif = base_ldif() + people + vip + sales
    with running(tmp_path / "ldap", ldif, ad_schema=False) as server:
        rules = [
            {"group": f"cn=VIP,{groups}", "profile": "vip"},
            {"group": f"cn=Sales,{groups}", "profile": "sales"},
        ]
        cfg = make_config(
            server, tmp_path, preset="openldap", group_base_dns=[groups], top={"profiles": rules}
        )
        out = run_sync(cfg, engine)
    assert out.status == "applied" and out.plan is not None, out.message
    assert out.plan.problems == []
    with Session(engine) as s:
        names = {p.id: p.name for p in s.execute(select(Profile)).scalars()}
    got = {u.address: names.get(u.profile_id or 0) for u in users(engine).values()}
    assert got == {"p0@corp.example": "vip", "p1@corp.example": "vip", "p2@corp.example": "sales"}


def test_a_mapping_that_empties_every_mobile_is_refused(
    tmp_path: Path,
    engine: Engine,  # noqa: F811
) -> None:
    with running(tmp_path / "ldap", ad_users_ldif(60)) as server:
        assert run_sync(make_config(server, tmp_path), engine).status == "applied"
        cfg = make_config(server, tmp_path, mapping={"mobile": ["pager"]})  # nobody has one
        out = run_sync(cfg, engine)
        assert (out.status, out.exit_code) == ("refused", EXIT_REFUSED), out.message
        assert "of, 60 users, more than max_disable_count=50" in out.message
        assert users(engine)[str(guid(5))].mobile == "+491701000005"
        out = run_sync(cfg, engine, allow_mass_changes=True)
    assert out.status == "applied", out.message
    assert users(engine)[str(guid(5))].mobile is None
