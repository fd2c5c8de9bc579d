"""dirsync against a real throwaway slapd (AD-like schema): the issue's done-when and more."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from bridge.cli.dirsync import dirsync_command
from bridge.tenants.directory_tables import DirsyncLock, SyncRun
from bridge.tenants.tables import Alias, Profile, User
from dirsync.config import DirsyncConfig, parse_config
from dirsync.run import EXIT_CONFIG, EXIT_FAILED, EXIT_LOCKED, EXIT_REFUSED, run_sync
from tests.helpers import acme_database
from tests.peers.slapd import (
    SVC_PASSWORD,
    Slapd,
    ad_user,
    ad_users_ldif,
    base_ldif,
    guid,
    running,
)

pytestmark = [
    pytest.mark.slapd,
    pytest.mark.filterwarnings("ignore:tagMap is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:typeMap is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:ssl.match_hostname:DeprecationWarning"),
]
SUFFIX = "dc=corp,dc=example"
STAFF = f"ou=Staff,{SUFFIX}"
MODIFY_REPLACE = "MODIFY_REPLACE"  # ldap3's constant (importing ldap3 here first would warn)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return acme_database(tmp_path, "sales", "vip", "standard")


def make_config(server: Slapd, tmp_path: Path, **ldap: Any) -> DirsyncConfig:
    pw = tmp_path / "ldap.pw"
    pw.write_text(SVC_PASSWORD + "\n")
    table: dict[str, Any] = {
        "url": server.url,
        "bind_dn": server.svc_dn,
        "password_file": str(pw),
        "allow_plaintext": True,
        "base_dns": [STAFF],
        "page_size": 500,
    }
    safety = ldap.pop("safety", {})
    top = ldap.pop("top", {})
    table.update(ldap)
    return parse_config({"customer": "acme", "ldap": table, "safety": safety, **top})


def users(engine: Engine) -> dict[str, User]:
    with Session(engine) as s:
        rows = s.execute(select(User)).scalars().all()
        s.expunge_all()
    return {u.external_id or u.address: u for u in rows}


def aliases(engine: Engine) -> dict[str, int]:
    with Session(engine) as s:
        return {a.address: a.user_id for a in s.execute(select(Alias)).scalars()}


def test_done_when_2500_ad_users(tmp_path: Path, engine: Engine) -> None:
    with running(tmp_path / "ldap", ad_users_ldif(2500)) as server:
        cfg = make_config(server, tmp_path)  # page 500, server size limit 1000: paging needed
        first = run_sync(cfg, engine)
        assert (first.status, first.exit_code) == ("applied", 0), first.message
        assert first.plan is not None and first.plan.counts()["added"] == 2500
        rows = users(engine)
        assert len(rows) == 2500
        u = rows[str(guid(7))]
        assert (u.address, u.enabled, u.origin, u.customer_id) == (
            "user000007@corp.example",
            True,
            "dirsync",
            1,
        )
        assert u.settings == {"sender_id": "CORP", "cost_centre": "CC-007"}
        assert u.mobile == "+491701000007" and u.display_name == "User 000007"
        assert aliases(engine)["u000007@legacy.example"] == u.id

        second = run_sync(cfg, engine)
        assert second.status == "unchanged" and second.plan is not None and second.plan.empty

        conn = server.admin()
        picked = [3, 333, 1000, 1999, 2499]
        for i in picked:
            conn.modify(
                f"cn=User {i:06d},{STAFF}", {"userAccountControl": [(MODIFY_REPLACE, [514])]}
            )
        third = run_sync(cfg, engine)
        assert third.status == "applied" and third.plan is not None
        assert third.plan.counts()["disabled"] == 5 and third.plan.counts()["updated"] == 5
        disabled = {k for k, v in users(engine).items() if not v.enabled}
        assert disabled == {str(guid(i)) for i in picked}
        assert all(users(engine)[str(guid(i))].disabled_at is not None for i in picked)

        for i in range(1000):  # 40 % of the directory
            conn.delete(f"cn=User {i:06d},{STAFF}")
        refused = run_sync(cfg, engine)
        assert (refused.status, refused.exit_code) == ("refused", EXIT_REFUSED)
        assert "max_disable_count=50" in refused.message
        assert {k for k, v in users(engine).items() if not v.enabled} == disabled

        allowed = run_sync(cfg, engine, allow_mass_changes=True)
        assert allowed.status == "applied", allowed.message
        assert sum(1 for v in users(engine).values() if not v.enabled) == 1000 + 3
    with Session(engine) as s:
        statuses = [
            r.status for r in s.execute(select(SyncRun).order_by(col(SyncRun.id))).scalars()
        ]
    assert statuses == ["applied", "unchanged", "applied", "refused", "applied"]


def test_truncated_search_aborts_and_changes_nothing(tmp_path: Path, engine: Engine) -> None:
    limits = "size.soft=10 size.hard=10 size.pr=10"  # no prtotal: a paged search is cut at 10
    with running(tmp_path / "ldap", ad_users_ldif(30), limits=limits) as server:
        outcome = run_sync(make_config(server, tmp_path, page_size=5), engine)
        assert (outcome.status, outcome.exit_code) == ("failed", EXIT_FAILED)
        assert "sizeLimitExceeded" in outcome.message
        big_pages = run_sync(make_config(server, tmp_path, page_size=20), engine)
        assert big_pages.exit_code == EXIT_FAILED and "adminLimitExceeded" in big_pages.message
    assert users(engine) == {}


def test_min_users_and_empty_directory(tmp_path: Path, engine: Engine) -> None:
    with running(tmp_path / "ldap", ad_users_ldif(3)) as server:
        outcome = run_sync(make_config(server, tmp_path, safety={"min_users": 5}), engine)
        assert outcome.exit_code == EXIT_REFUSED and "min_users=5" in outcome.message
        empty = run_sync(make_config(server, tmp_path, filter="(cn=nobody)"), engine)
        assert empty.exit_code == EXIT_REFUSED and "0 users" in empty.message
    assert users(engine) == {}


def test_groups_resolve_nested_profiles(tmp_path: Path, engine: Engine) -> None:
    g = f"ou=Groups,{SUFFIX}"
    ldif = base_ldif() + "".join(
        [
            ad_user(0),
            ad_user(1),
            ad_user(2),
            ad_user(3, groups=[f"cn=Sales-DE,{g}"]),
            ad_user(4),
            f"dn: cn=VIP,{g}\nobjectClass: group\ncn: VIP\nmember: cn=User 000000,{STAFF}\n\n",
            f"dn: cn=Sales,{g}\nobjectClass: group\ncn: Sales\nmember: cn=Sales-EU,{g}\n\n",
            f"dn: cn=Sales-EU,{g}\nobjectClass: group\ncn: Sales-EU\nmember: CN=Sales-DE,{g}\n\n",
            f"dn: cn=Sales-DE,{g}\nobjectClass: group\ncn: Sales-DE\n"
            f"member: cn=User 000001,{STAFF}\nmember: cn=User 000000,{STAFF}\n\n",
        ]
    )
    with running(tmp_path / "ldap", ldif) as server:
        cfg = make_config(
            server,
            tmp_path,
            group_base_dns=[g],
            top={
                "profiles": [
                    {"group": f"cn=VIP,{g}", "profile": "vip"},
                    {"group": f"cn=Sales,{g}", "profile": "sales"},
                ],
                "default_profile": "standard",
            },
        )
        assert run_sync(cfg, engine).status == "applied"
    with Session(engine) as s:
        names = {p.id: p.name for p in s.execute(select(Profile)).scalars()}
    got = {i: names[users(engine)[str(guid(i))].profile_id or 0] for i in range(5)}
    assert got == {0: "vip", 1: "sales", 2: "standard", 3: "sales", 4: "standard"}


def test_update_aliases_reenable_and_manual_users(tmp_path: Path, engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        s.add(User(customer_id=1, address="boss@corp.example", origin="manual"))
    ldif = ad_users_ldif(4) + ad_user(9, uac=514)
    with running(tmp_path / "ldap", ldif) as server:
        cfg = make_config(server, tmp_path, safety={"max_disable_percent": 100})
        first = run_sync(cfg, engine)
        assert first.plan is not None and first.plan.counts()["added"] == 4  # 9 is disabled
        conn = server.admin()
        dn1 = f"cn=User 000001,{STAFF}"
        conn.modify(dn1, {
            "mobile": [(MODIFY_REPLACE, ["+43 664 1234567"])],
            "proxyAddresses": [(MODIFY_REPLACE, [
                "SMTP:user000001@corp.example", "smtp:team@corp.example", "smtp:boss@corp.example",
            ])],
        })  # fmt: skip
        conn.modify(f"cn=User 000002,{STAFF}", {"userAccountControl": [(MODIFY_REPLACE, [514])]})
        assert run_sync(cfg, engine).status == "applied"
        u1 = users(engine)[str(guid(1))]
        assert u1.mobile == "+436641234567"
        al = aliases(engine)
        assert al.get("team@corp.example") == u1.id
        assert "u000001@legacy.example" not in al and "boss@corp.example" not in al
        assert users(engine)["boss@corp.example"].enabled  # the manual user is untouched
        conn.modify(f"cn=User 000002,{STAFF}", {"userAccountControl": [(MODIFY_REPLACE, [66048])]})
        conn.modify(f"cn=User 000009,{STAFF}", {"userAccountControl": [(MODIFY_REPLACE, [512])]})
        third = run_sync(cfg, engine)
        assert third.plan is not None and third.plan.counts()["added"] == 1
        u2 = users(engine)[str(guid(2))]
        assert u2.enabled and u2.disabled_at is None
        assert users(engine)[str(guid(9))].enabled


def test_openldap_preset_with_entry_uuid(tmp_path: Path, engine: Engine) -> None:
    people = "".join(
        f"dn: uid=p{i},{STAFF}\nobjectClass: inetOrgPerson\nuid: p{i}\ncn: Person {i}\nsn: {i}\n"
        f"mail: p{i}@corp.example\nmail: person{i}@corp.example\nmobile: +49 171 555000{i}\n"
        f"departmentNumber: D{i}\n\n"
        for i in range(3)
    )
    with running(tmp_path / "ldap", base_ldif() + people, ad_schema=False) as server:
        cfg = make_config(server, tmp_path, preset="openldap")
        outcome = run_sync(cfg, engine)
        assert outcome.status == "applied", outcome.message
    rows = sorted(users(engine).values(), key=lambda u: u.address)
    assert [u.address for u in rows] == ["p0@corp.example", "p1@corp.example", "p2@corp.example"]
    assert all(len(u.external_id or "") == 36 for u in rows)  # entryUUID
    assert rows[1].settings == {"cost_centre": "D1"} and rows[1].mobile == "+491715550001"
    assert aliases(engine)["person2@corp.example"] == rows[2].id


def test_ldaps_and_starttls_check_the_ca(tmp_path: Path, engine: Engine) -> None:
    with running(tmp_path / "ldap", ad_users_ldif(3), tls=True) as server:
        ca = str(server.ca_file)
        ldaps = make_config(
            server, tmp_path, url=server.ldaps_url, ca_file=ca, allow_plaintext=False
        )
        assert run_sync(ldaps, engine, dry_run=True).status == "dry_run"
        starttls = make_config(server, tmp_path, starttls=True, ca_file=ca, allow_plaintext=False)
        assert run_sync(starttls, engine, dry_run=True).status == "dry_run"
        no_ca = make_config(server, tmp_path, url=server.ldaps_url, allow_plaintext=False)
        outcome = run_sync(no_ca, engine)
        assert outcome.exit_code == EXIT_FAILED and "certificate verify failed" in outcome.message
        no_ca_starttls = make_config(server, tmp_path, starttls=True)
        assert run_sync(no_ca_starttls, engine).exit_code == EXIT_FAILED
    assert users(engine) == {}


def test_tls_checks_the_host_name(tmp_path: Path, engine: Engine) -> None:
    ldif = ad_users_ldif(3)
    with running(tmp_path / "ldap", ldif, tls=True, tls_name="ldap.example.org") as server:
        ca = str(server.ca_file)
        wrong = make_config(server, tmp_path, url=server.ldaps_url, ca_file=ca)
        outcome = run_sync(wrong, engine, dry_run=True)
        assert outcome.exit_code == EXIT_FAILED and "ldaps://" in outcome.message
        named = make_config(
            server, tmp_path, url=server.ldaps_url, ca_file=ca, tls_hostname="ldap.example.org"
        )
        assert run_sync(named, engine, dry_run=True).status == "dry_run"


def test_bind_and_network_errors(tmp_path: Path, engine: Engine) -> None:
    with running(tmp_path / "ldap", ad_users_ldif(3)) as server:
        cfg = make_config(server, tmp_path)
        (tmp_path / "ldap.pw").write_text("wrong")
        from dataclasses import replace

        assert cfg.ldap is not None
        outcome = run_sync(cfg, engine)
        assert outcome.exit_code == EXIT_FAILED and "invalid credentials" in outcome.message
        port = server.port
    closed = replace(cfg, ldap=replace(cfg.ldap, url=f"ldap://127.0.0.1:{port}"))
    outcome = run_sync(closed, engine)
    assert outcome.exit_code == EXIT_FAILED and "cannot connect" in outcome.message


def test_injection_attempts_in_configured_values(tmp_path: Path, engine: Engine) -> None:
    evil = "(objectClass=user))(|(objectClass=*)"
    conf = tmp_path / "dirsync.toml"
    conf.write_text(
        f'customer = "acme"\n[ldap]\nurl = "ldap://127.0.0.1:1"\nbind_dn = "cn=x"\n'
        f'password_env = "NOPE"\nallow_plaintext = true\nbase_dns = ["{STAFF}"]\n'
        f'filter = "{evil}"\n'
    )
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    assert dirsync_command(conf, None, False, False, url, False) == EXIT_CONFIG
    # values from the directory never reach a filter: an entry whose mail and group DN
    # hold filter syntax is mapped as data (the mail is rejected as an address, the
    # SMTP: one of proxyAddresses is the primary)
    g = f"ou=Groups,{SUFFIX}"
    weird_group = rf"cn=Sales \28*\29,{g}"
    ldif = (
        base_ldif()
        + ad_user(0)
        + ad_user(1).replace("mail: user000001@corp.example", "mail: *)(mail=*")
        + (
            f"dn: {weird_group}\nobjectClass: group\ncn: Sales (*)\n"
            f"member: cn=User 000000,{STAFF}\n\n"
        )
    )
    with running(tmp_path / "ldap", ldif) as server:
        cfg = make_config(
            server, tmp_path, group_base_dns=[g],
            top={"profiles": [{"group": weird_group, "profile": "sales"}]},
        )  # fmt: skip
        outcome = run_sync(cfg, engine)
        assert outcome.status == "applied", outcome.message
        assert outcome.plan is not None
        assert any("invalid mail" in p.message for p in outcome.plan.problems)
    rows = users(engine)
    assert sorted(rows) == sorted([str(guid(0)), str(guid(1))])
    assert rows[str(guid(0))].profile_id is not None
    assert rows[str(guid(1))].address == "user000001@corp.example"


def test_lock_keeps_runs_apart(tmp_path: Path, engine: Engine) -> None:
    holder = f"{socket.gethostname()}:{os.getpid()}"  # this process: alive
    with Session(engine) as s, s.begin():
        s.add(DirsyncLock(name="acme", holder=holder))
    with running(tmp_path / "ldap", ad_users_ldif(3)) as server:
        cfg = make_config(server, tmp_path)
        busy = run_sync(cfg, engine)
        assert busy.exit_code == EXIT_LOCKED and holder in busy.message
        with Session(engine) as s, s.begin():
            lock = s.get(DirsyncLock, "acme")
            assert lock is not None
            lock.holder = f"{socket.gethostname()}:999999999"  # a dead process: stale
        assert run_sync(cfg, engine).status == "applied"
    with Session(engine) as s:
        assert s.get(DirsyncLock, "acme") is None
