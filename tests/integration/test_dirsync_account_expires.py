"""dirsync against a throwaway slapd (AD-like schema with `accountExpires`): an account whose
expiry time has passed is disabled like one with the ACCOUNTDISABLE bit, and the report
says why; "never" and future times stay enabled; a value that is no time is reported and
the stored state kept. A directory without `accountExpires` is still read."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from bridge.tenants.directory_tables import SyncRun
from dirsync.run import EXIT_CONFIG, run_sync
from tests.integration.test_dirsync_ldap import STAFF, engine, make_config, users  # noqa: F401
from tests.peers import slapd
from tests.peers.slapd import ad_user, base_ldif, guid, running

pytestmark = [
    pytest.mark.slapd,
    pytest.mark.filterwarnings("ignore:tagMap is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:typeMap is deprecated:DeprecationWarning"),
]
MODIFY_REPLACE = "MODIFY_REPLACE"  # ldap3's constant (importing ldap3 here first would warn)
UNIX_EPOCH_FILETIME = 116_444_736_000_000_000  # 1970-01-01 in 100-ns ticks since 1601
NEVER = "9223372036854775807"


def ticks(at: datetime) -> str:
    """`at` as AD writes accountExpires: 100-ns intervals since 1601-01-01 UTC."""
    return str(UNIX_EPOCH_FILETIME + int(at.timestamp()) * 10_000_000)


PAST = ticks(datetime(2020, 3, 31, 22, 0, tzinfo=UTC))
FUTURE = ticks(datetime(2100, 1, 1, tzinfo=UTC))


def user(i: int, **attrs: str) -> str:
    """An AD-like user entry with some more attributes."""
    return ad_user(i).rstrip("\n") + "".join(f"\n{k}: {v}" for k, v in attrs.items()) + "\n\n"


def dn(i: int) -> str:
    return f"cn=User {i:06d},{STAFF}"


def test_an_expired_account_is_disabled_and_the_report_says_why(
    tmp_path: Path,
    engine: Engine,  # noqa: F811
) -> None:
    ldif = (
        base_ldif()
        + user(0, accountExpires="0")
        + user(1, accountExpires=NEVER)
        + user(2, accountExpires=FUTURE)
        + user(3)  # no accountExpires at all
        + user(4, accountExpires=NEVER)
        + user(5, accountExpires=NEVER)
        + user(6, accountExpires=PAST)  # expired before its first run: not added
        + "".join(ad_user(i) for i in range(7, 30))
    )
    with running(tmp_path / "ldap", ldif) as server:
        cfg = make_config(server, tmp_path)
        first = run_sync(cfg, engine)
        assert first.status == "applied" and first.plan is not None, first.message
        assert first.plan.problems == []
        assert str(guid(6)) not in users(engine)
        admin = server.admin()
        admin.modify(dn(4), {"accountExpires": [(MODIFY_REPLACE, [PAST])]})
        admin.modify(dn(5), {"accountExpires": [(MODIFY_REPLACE, ["-1"])]})  # no FILETIME
        out = run_sync(cfg, engine)
    assert out.status == "applied" and out.plan is not None, out.message
    assert [c.describe() for c in out.plan.changes] == [
        "update  user000004@corp.example [" + str(guid(4)) + "] (account expired on "
        "2020-03-31 22:00 UTC (accountExpires)): enabled: True → False"
    ]
    assert [p.describe() for p in out.plan.problems] == [
        f"{dn(5)}: accountExpires '-1' is not a time (a FILETIME: a whole number of 100-ns "
        "intervals since 1601, 0 or 9223372036854775807 for never); enabled state left "
        "unchanged (a new user is not added)"
    ]
    rows = users(engine)
    assert not rows[str(guid(4))].enabled and rows[str(guid(4))].disabled_at is not None
    assert all(rows[str(guid(i))].enabled for i in (0, 1, 2, 3, 5))
    with Session(engine) as s:
        run = s.execute(select(SyncRun).order_by(SyncRun.id.desc())).scalars().first()  # type: ignore[union-attr]
    assert run is not None and run.counts["disabled"] == 1
    assert any("account expired on 2020-03-31 22:00 UTC" in line for line in run.details)


def test_the_runs_time_decides_and_mass_expiry_is_capped(
    tmp_path: Path,
    engine: Engine,  # noqa: F811
) -> None:
    soon = ticks(datetime(2099, 6, 30, tzinfo=UTC))
    ldif = base_ldif() + "".join(user(i, accountExpires=soon) for i in range(60))
    with running(tmp_path / "ldap", ldif) as server:
        cfg = make_config(server, tmp_path)
        assert run_sync(cfg, engine).status == "applied"
        later = datetime(2099, 7, 1, tzinfo=UTC)  # every account has expired by then
        refused = run_sync(cfg, engine, now=later)
        assert refused.status == "refused", refused.message
        assert "disable 60 users, more than max_disable_count=50" in refused.message
        assert all(u.enabled for u in users(engine).values())
        allowed = run_sync(cfg, engine, now=later, allow_mass_changes=True)
    assert allowed.status == "applied", allowed.message
    assert not any(u.enabled for u in users(engine).values())


def test_another_expiry_attribute_and_a_value_that_is_no_time(
    tmp_path: Path,
    engine: Engine,  # noqa: F811
) -> None:
    ldif = (
        base_ldif()
        + user(0, employeeNumber="tomorrow")
        + user(1, employeeNumber=PAST, accountExpires=NEVER)
        + user(2, employeeNumber=NEVER, accountExpires=PAST)  # accountExpires is not read
    )
    with running(tmp_path / "ldap", ldif) as server:
        cfg = make_config(server, tmp_path, mapping={"expires_attribute": "employeeNumber"})
        out = run_sync(cfg, engine)
    assert out.status == "applied" and out.plan is not None, out.message
    assert [p.message.split(" is not a time")[0] for p in out.plan.problems] == [
        "employeeNumber 'tomorrow'"
    ]
    assert set(users(engine)) == {str(guid(2))}  # 0: state unknown, 1: expired: not added


def test_a_directory_without_account_expires_is_read(
    tmp_path: Path,
    engine: Engine,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The AD-like schema as it was before it had accountExpires (an AD-ish directory on
    OpenLDAP): the default expiry attribute is left out; a named one stops the run."""
    schema = slapd.AD_SCHEMA.read_text()
    start = schema.index("# AD: Integer8")
    end = schema.index("attributetype", schema.index("'accountExpires'"))
    without = schema[:start] + schema[end:]
    without = without.replace(" accountExpires $", "")
    assert "accountExpires" not in without
    (tmp_path / "ad-old.schema").write_text(without)
    monkeypatch.setattr(slapd, "AD_SCHEMA", tmp_path / "ad-old.schema")
    ldif = base_ldif() + "".join(ad_user(i) for i in range(5)) + ad_user(5, uac=514)
    with running(tmp_path / "ldap", ldif) as server:
        out = run_sync(make_config(server, tmp_path), engine)
        assert out.status == "applied" and out.plan is not None, out.message
        assert out.plan.problems == [] and out.plan.counts()["added"] == 5
        named = make_config(server, tmp_path, mapping={"expires_attribute": "accountExpires"})
        stopped = run_sync(named, engine)
    assert stopped.exit_code == EXIT_CONFIG, stopped.message
    assert stopped.message == (
        "ldap.mapping.expires_attribute: the directory's schema has no attribute "
        "'accountExpires'; write the name the directory's schema uses, or \"\" to read no "
        "expiry time"
    )
