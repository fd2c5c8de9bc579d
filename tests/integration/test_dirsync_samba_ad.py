"""dirsync against a real Active Directory: Samba's AD DC (tests/peers/samba_ad.py), one
throwaway domain for the module, driven with the `ad` preset as an admin configures it.

Covers what AD does that the slapd tests cannot show: objectGUID as the id, mobile numbers
in AD's usual notations, userAccountControl and accountExpires as AD writes them (0 and
9223372036854775807 for "never"), nested groups by `member`, paging, a search from the
domain root (AD answers with continuation references), binds by DN, by UPN and as
DOMAIN\\user, Samba's refusal of a simple bind without TLS, its self-signed certificate
and AD's bind diagnostics (`data 52e`, `data 533`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from bridge.cli.dirsync import dirsync_command
from bridge.tenants.directory_tables import SyncRun
from bridge.tenants.tables import Alias, Profile, User
from dirsync.config import DirsyncConfig, parse_config
from dirsync.run import EXIT_CONFIG, EXIT_FAILED, run_sync
from tests.helpers import acme_database
from tests.peers.samba_ad import BASE_DN, DOMAIN, REALM, SVC_PASSWORD, TLS_NAME, SambaAD, running

pytestmark = [
    pytest.mark.samba,
    pytest.mark.filterwarnings("ignore:tagMap is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:typeMap is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:ssl.match_hostname:DeprecationWarning"),
]
STAFF = f"OU=Staff,{BASE_DN}"
GROUPS = f"OU=Groups,{BASE_DN}"
UNIX_EPOCH_FILETIME = 116_444_736_000_000_000  # 1970-01-01 in 100-ns ticks since 1601
NEVER = "9223372036854775807"
FILLERS = 20  # more users than a page of 3: the paged search must go on


def ticks(at: datetime) -> str:
    return str(UNIX_EPOCH_FILETIME + int(at.timestamp()) * 10_000_000)


@dataclass(frozen=True)
class Domain:
    server: SambaAD
    guids: dict[str, str]  # sAMAccountName -> objectGUID as dirsync stores it


def _add_user(conn: Any, name: str, **attrs: Any) -> None:
    """A user as AD's tools make one: a password (over LDAPS only), then enabled (512)."""
    dn = f"CN={name},{STAFF}"
    conn.add(
        dn,
        ["top", "person", "organizationalPerson", "user"],
        {
            "sAMAccountName": name,
            "userPrincipalName": f"{name}@{REALM.lower()}",
            "unicodePwd": f'"Pw-{name}-2026!"'.encode("utf-16-le"),
            **attrs,
        },
    )
    conn.modify(dn, {"userAccountControl": [("MODIFY_REPLACE", ["512"])]})


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Domain]:
    with running(tmp_path_factory.mktemp("samba") / "ad") as server:
        conn = server.admin()
        conn.add(STAFF, ["top", "organizationalUnit"])
        conn.add(GROUPS, ["top", "organizationalUnit"])
        _add_user(
            conn, "anna", mail="Anna.Alpha@corp.example", displayName="Anna Alpha",
            mobile="+49 (0)170 1111111", telephoneNumber="+49 89 1234-567",
            proxyAddresses=["SMTP:anna.alpha@corp.example", "smtp:anna@legacy.example",
                            "X500:/o=corp/cn=anna"],
            department="CC-4711",
        )  # fmt: skip
        _add_user(conn, "bert", mail="bert@corp.example", mobile="0171/2222222")
        _add_user(conn, "carl", mail="carl@corp.example", mobile="+49 172 333 3333")
        _add_user(conn, "dora", mail="dora@corp.example", otherMobile="+49-173-4444444")
        _add_user(conn, "emil", mail="emil@corp.example", telephoneNumber="+49 30 5555555")
        _add_user(conn, "fred", mail="fred@corp.example")
        for i in range(FILLERS):
            _add_user(conn, f"user{i:02d}", mail=f"user{i:02d}@corp.example")
        # AD's own tools for the account states
        server.tool("user", "disable", "bert")
        server.tool("user", "setexpiry", "dora", "--noexpiry")  # accountExpires: 0
        server.tool("user", "setexpiry", "fred", "--days=30")  # a future time
        past = ticks(datetime(2020, 3, 31, 22, 0, tzinfo=UTC))
        conn.modify(f"CN=carl,{STAFF}", {"accountExpires": [("MODIFY_REPLACE", [past])]})
        # nested groups: Sales ∋ EMEA ∋ anna
        for group in ("Sales", "EMEA"):
            server.tool("group", "add", group, "--groupou=OU=Groups")
        server.tool("group", "addmembers", "Sales", "EMEA")
        server.tool("group", "addmembers", "EMEA", "anna")
        # a second service account, disabled: AD's `data 533`
        server.tool("user", "create", "svc-off", SVC_PASSWORD)
        server.tool("user", "disable", "svc-off")
        conn.search(STAFF, "(objectClass=user)", attributes=["sAMAccountName", "objectGUID"])
        guids = {
            str(e["attributes"]["sAMAccountName"]): str(
                uuid.UUID(bytes_le=e["raw_attributes"]["objectGUID"][0])
            )
            for e in conn.response
            if e.get("type") == "searchResEntry"
        }
        conn.unbind()
        yield Domain(server, guids)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return acme_database(tmp_path, "sales", "vip", "standard")


def make_config(domain: Domain, tmp_path: Path, **ldap: Any) -> DirsyncConfig:
    pw = tmp_path / "ldap.pw"
    pw.write_text(ldap.pop("password", SVC_PASSWORD) + "\n")
    table: dict[str, Any] = {
        "url": domain.server.ldaps_url,
        "ca_file": str(domain.server.ca_file),
        "tls_hostname": TLS_NAME,
        "bind_dn": domain.server.svc_dn,
        "password_file": str(pw),
        "base_dns": [STAFF],
        "page_size": 3,
    }
    table.update(ldap)
    table = {k: v for k, v in table.items() if v is not None}
    return parse_config({"customer": "acme", "ldap": table})


def users(engine: Engine) -> dict[str, User]:
    with Session(engine) as s:
        rows = s.execute(select(User)).scalars().all()
        s.expunge_all()
    return {u.external_id or u.address: u for u in rows}


def last_run(engine: Engine) -> SyncRun:
    with Session(engine) as s:
        run: SyncRun | None = (
            s.execute(select(SyncRun).order_by(col(SyncRun.id).desc())).scalars().first()
        )
        assert run is not None
        s.expunge(run)
    return run


def test_the_command_syncs_ad_users_as_configured(
    domain: Domain, tmp_path: Path, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mailsms dirsync -c bridge.toml` with the documented AD settings: LDAPS with Samba's
    CA, a UPN bind, the `ad` preset, a nested group rule, pages of 3."""
    (tmp_path / "svc.pw").write_text(SVC_PASSWORD + "\n")
    settings = tmp_path / "bridge.toml"
    settings.write_text(
        f'database_url = "sqlite:///{tmp_path / "bridge.db"}"\n'
        '[smtp]\nhostname = "sms.corp.example"\n[sandbox]\nenabled = true\n'
        '[dirsync]\ncustomer = "acme"\n'
        "[dirsync.ldap]\n"
        f'url = "{domain.server.ldaps_url}"\n'
        f'tls_hostname = "{TLS_NAME}"\n'
        f'ca_file = "{domain.server.ca_file}"\n'
        f'bind_dn = "svc-mailsms@{REALM.lower()}"\n'
        f'password_file = "{tmp_path / "svc.pw"}"\n'
        f'base_dns = ["{STAFF}"]\n'
        "page_size = 3\n"
        f'group_base_dns = ["{GROUPS}"]\n'
        "[[dirsync.profiles]]\n"
        f'group = "CN=Sales,{GROUPS}"\n'
        'profile = "sales"\n'
    )
    assert dirsync_command(settings, None, False, False, None, False) == 0, capsys.readouterr()
    rows = users(engine)
    g = domain.guids
    # all but bert (disabled: bit 2 of 514) and carl (expired), not added as disabled
    assert len(rows) == 4 + FILLERS
    assert g["bert"] not in rows and g["carl"] not in rows
    anna = rows[g["anna"]]
    assert (anna.address, anna.mobile, anna.display_name, anna.enabled) == (
        "anna.alpha@corp.example", "+491701111111", "Anna Alpha", True,
    )  # fmt: skip
    assert anna.settings == {"cost_centre": "CC-4711"}
    with Session(engine) as s:
        sales = s.execute(select(Profile).where(col(Profile.name) == "sales")).scalars().one()
        aliases = {a.address: a.user_id for a in s.execute(select(Alias)).scalars()}
    assert anna.profile_id == sales.id
    assert aliases["anna@legacy.example"] == anna.id
    assert rows[g["dora"]].mobile == "+491734444444" and rows[g["dora"]].enabled  # never: 0
    assert rows[g["fred"]].enabled  # expires in 30 days
    assert rows[g["user00"]].enabled  # 9223372036854775807, AD's default: never
    assert rows[g["emil"]].mobile is None  # telephoneNumber is never a mobile
    assert all(rows[g[f"user{i:02d}"]].profile_id is None for i in range(FILLERS))
    # the second run finds nothing to do
    assert dirsync_command(settings, None, False, False, None, False) == 0
    assert last_run(engine).status == "unchanged"
    # an account disabled and one given a mobile with AD's own tools
    domain.server.tool("user", "disable", "emil")
    conn = domain.server.admin()
    try:
        conn.modify(
            f"CN=fred,{STAFF}", {"mobile": [("MODIFY_REPLACE", ["0049 (0) 175 666 66 66"])]}
        )
        assert dirsync_command(settings, None, False, False, None, False) == 0
    finally:
        domain.server.tool("user", "enable", "emil")
        conn.modify(f"CN=fred,{STAFF}", {"mobile": [("MODIFY_DELETE", [])]})
        conn.unbind()
    assert last_run(engine).status == "applied"
    after = users(engine)
    assert not after[g["emil"]].enabled and after[g["emil"]].disabled_at is not None
    assert after[g["fred"]].mobile == "+491756666666"


def test_binds_by_dn_upn_and_domain_user(domain: Domain, tmp_path: Path, engine: Engine) -> None:
    for account in (domain.server.svc_dn, f"svc-mailsms@{REALM.lower()}", f"{DOMAIN}\\svc-mailsms"):
        outcome = run_sync(make_config(domain, tmp_path, bind_dn=account), engine, dry_run=True)
        assert outcome.status == "dry_run", (account, outcome.message)
        assert outcome.plan is not None and outcome.plan.counts()["added"] == 4 + FILLERS


def test_starttls_with_sambas_ca(domain: Domain, tmp_path: Path, engine: Engine) -> None:
    cfg = make_config(domain, tmp_path, url=domain.server.url, starttls=True)
    assert run_sync(cfg, engine, dry_run=True).status == "dry_run"


def test_a_search_from_the_domain_root(domain: Domain, tmp_path: Path, engine: Engine) -> None:
    """AD answers a subtree search of the domain with continuation references (to
    CN=Configuration): they are no entries and no failure. Built-in accounts without mail
    (Administrator, krbtgt, the service account) are reported, never added."""
    cfg = make_config(
        domain,
        tmp_path,
        base_dns=[BASE_DN],
        filter="(&(objectCategory=person)(objectClass=user)(mail=*))",
    )
    outcome = run_sync(cfg, engine, dry_run=True)
    assert outcome.status == "dry_run", outcome.message
    assert outcome.plan is not None and outcome.plan.counts()["added"] == 4 + FILLERS
    assert outcome.plan.problems == []
    everyone = run_sync(make_config(domain, tmp_path, base_dns=[BASE_DN]), engine, dry_run=True)
    assert everyone.status == "dry_run" and everyone.plan is not None
    assert everyone.plan.counts()["added"] == 4 + FILLERS
    assert any("Administrator" in p.describe() for p in everyone.plan.problems)


def test_a_simple_bind_without_tls_says_what_to_do(
    domain: Domain, tmp_path: Path, engine: Engine
) -> None:
    """Samba (like AD with LDAP signing required) refuses a password over plain LDAP."""
    cfg = make_config(domain, tmp_path, url=domain.server.url, allow_plaintext=True)
    outcome = run_sync(cfg, engine)
    assert outcome.exit_code == EXIT_FAILED
    assert outcome.message == (
        f"bind as {domain.server.svc_dn} failed: the server refuses a password over an "
        "unencrypted connection (strongerAuthRequired; AD's and Samba's default): use an "
        "ldaps:// url, or set ldap.starttls = true"
    )
    assert users(engine) == {}


def test_sambas_self_signed_certificate(domain: Domain, tmp_path: Path, engine: Engine) -> None:
    """Samba's certificate: signed by its own CA (private/tls/ca.pem), issued for the DC's
    name only (DC1.corp.example, no subject alternative name)."""
    url = domain.server.ldaps_url
    no_ca = run_sync(make_config(domain, tmp_path, ca_file=None), engine)
    assert (no_ca.exit_code, no_ca.message) == (
        EXIT_FAILED,
        f"TLS with {url}: certificate verify failed (unable to get local issuer certificate): "
        "set ldap.ca_file to the CA certificate that issued the server's (a Samba AD DC's own "
        "CA is private/tls/ca.pem)",
    )
    by_address = run_sync(make_config(domain, tmp_path, tls_hostname=None), engine)
    assert (by_address.exit_code, by_address.message) == (
        EXIT_FAILED,
        f"TLS with {url}: the server's certificate is for {TLS_NAME}, not "
        f"{domain.server.address}: connect by that name in ldap.url, or set "
        f'ldap.tls_hostname = "{TLS_NAME}"',
    )
    starttls = make_config(domain, tmp_path, url=domain.server.url, starttls=True, ca_file=None)
    failed = run_sync(starttls, engine)
    assert failed.exit_code == EXIT_FAILED
    assert failed.message.startswith(
        f"TLS with {domain.server.url} (StartTLS): certificate verify failed"
    )
    assert users(engine) == {}
    unverified = make_config(domain, tmp_path, ca_file=None, tls_verify=False, tls_hostname=None)
    assert run_sync(unverified, engine, dry_run=True).status == "dry_run"


def test_ad_bind_diagnostics(domain: Domain, tmp_path: Path, engine: Engine) -> None:
    """AD's `data …` code of invalidCredentials becomes what to do."""
    wrong = run_sync(make_config(domain, tmp_path, password="wrong"), engine)
    assert (wrong.exit_code, wrong.message) == (
        EXIT_FAILED,
        f"bind as {domain.server.svc_dn} failed: invalid credentials (AD: data 52e): wrong "
        "password or no such account: check the password in ldap.password_env / "
        "ldap.password_file and ldap.bind_dn (a DN, a UPN (svc@corp.example) or DOMAIN\\user)",
    )
    off = run_sync(make_config(domain, tmp_path, bind_dn=f"{DOMAIN}\\svc-off"), engine)
    assert off.message == (
        f"bind as {DOMAIN}\\svc-off failed: invalid credentials (AD: data 533): the account "
        "is disabled: enable it in AD"
    )
    assert users(engine) == {}


def test_profile_rules_and_where_groups_are_read(
    domain: Domain, tmp_path: Path, engine: Engine
) -> None:
    """A rule's group DN in any case and spacing; a group outside group_base_dns (which
    defaults to base_dns, here the users' OU) is reported with the setting to change."""
    rule = {"group": "cn=sales, ou=groups, dc=corp, dc=example", "profile": "vip"}
    cfg = make_config(domain, tmp_path, group_base_dns=[GROUPS])
    cfg = replace(cfg, profiles=parse_config({"customer": "acme", "profiles": [rule]}).profiles)
    outcome = run_sync(cfg, engine, dry_run=True)
    assert outcome.status == "dry_run" and outcome.plan is not None, outcome.message
    assert outcome.plan.problems == []
    profiles = {c.address: c.user.profile for c in outcome.plan.changes if c.user is not None}
    assert profiles["anna.alpha@corp.example"] == "vip" and profiles["dora@corp.example"] is None
    elsewhere = replace(cfg, ldap=make_config(domain, tmp_path).ldap)
    missed = run_sync(elsewhere, engine, dry_run=True)
    assert missed.plan is not None
    assert [p.describe() for p in missed.plan.problems] == [
        "cn=sales,ou=groups,dc=corp,dc=example: profile rule group not found under "
        f"ldap.group_base_dns ({STAFF}) or it has no members: check the rule's DN, and set "
        "group_base_dns to the OUs holding the group and the groups nested in it (default: "
        "base_dns)"
    ]


def test_exchange_attributes_in_an_ad_without_exchange(
    domain: Domain, tmp_path: Path, engine: Engine
) -> None:
    """Samba's schema has no Exchange attributes: the preset's extensionAttribute1 is left
    out (the run goes on), another one named in [dirsync.ldap.mapping] stops the run with
    the key named."""
    assert run_sync(make_config(domain, tmp_path), engine, dry_run=True).status == "dry_run"
    named = make_config(domain, tmp_path, mapping={"sender_id": "extensionAttribute2"})
    outcome = run_sync(named, engine, dry_run=True)
    assert outcome.exit_code == EXIT_CONFIG, outcome.message
    assert outcome.message.startswith("ldap.mapping.sender_id"), outcome.message
    assert "extensionAttribute2" in outcome.message
