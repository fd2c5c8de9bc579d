"""`mailsms portal-account` through the real command: roles, refusals, lockout lifted, sessions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bridge.cli import app
from bridge.db.clock import utcnow
from bridge.db.engine import open_engine
from bridge.db.store import run_sync
from bridge.portal.accounts import find_account, locked_for, record_failure
from bridge.portal.sessions import find_session, open_session
from bridge.portal.status import FREE_FAILURES
from tests.conftest import make_settings

PW = "a long enough password"


def _invoke(config: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, [*args, "-c", str(config)], env=env)


def _ok(config: Path, *args: str) -> str:
    result = _invoke(config, *args, env={"PW": PW})
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def _refused(config: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = _invoke(config, *args, env=env or {"PW": PW})
    assert result.exit_code == 1, (args, result.output)
    assert "Traceback" not in result.output and not isinstance(result.exception, Exception)
    return result.output


@pytest.fixture
def config(tmp_path: Path) -> Path:
    make_settings(tmp_path)
    config = tmp_path / "bridge.toml"
    _ok(config, "db", "upgrade")
    _ok(config, "customer", "add", "acme")
    return config


def test_add_both_roles_and_list(config: Path, tmp_path: Path) -> None:
    out = _ok(config, "portal-account", "add", "Anna", "--customer", "acme", "--password-env", "PW")
    assert "anna added (customer_admin, customer acme)" in out
    out = _ok(config, "portal-account", "add", "ops", "--role", "operator", "--password-env", "PW")
    assert "(operator, every customer)" in out
    listed = _ok(config, "portal-account", "list").splitlines()
    assert [line.split()[:3] for line in listed] == [
        ["anna", "customer_admin", "acme"],
        ["ops", "operator", "*"],
    ]
    assert PW.encode() not in (tmp_path / "bridge.db").read_bytes()


def test_refusals_say_what_to_do(config: Path) -> None:
    add = ("portal-account", "add")
    assert "needs --customer" in _refused(config, *add, "x", "--password-env", "PW")
    assert "no customer 'nope'" in _refused(
        config, *add, "x", "--customer", "nope", "--password-env", "PW"
    )
    assert "leave out --customer" in _refused(
        config, *add, "x", "--role", "operator", "--customer", "acme", "--password-env", "PW"
    )
    assert "at least 10 characters" in _refused(
        config, *add, "x", "--customer", "acme", "--password-env", "PW", env={"PW": "short"}
    )
    _ok(config, *add, "x", "--customer", "acme", "--password-env", "PW")
    assert "exists already" in _refused(
        config, *add, "X", "--customer", "acme", "--password-env", "PW"
    )
    assert "no portal account 'y'" in _refused(config, "portal-account", "disable", "y")


def test_password_and_enable_lift_a_lockout_and_end_sessions(config: Path, tmp_path: Path) -> None:
    _ok(config, "portal-account", "add", "anna", "--customer", "acme", "--password-env", "PW")
    engine = open_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    now = utcnow()
    account = run_sync(engine, find_account, "anna")
    assert account is not None
    for _ in range(FREE_FAILURES + 2):
        run_sync(engine, record_failure, account.id, now)
    locked = run_sync(engine, find_account, "anna")
    assert locked is not None and locked_for(locked, now) == 8
    opened = run_sync(engine, open_session, account.id, now, timedelta(hours=1))
    _ok(config, "portal-account", "password", "anna", "--password-env", "PW")
    unlocked = run_sync(engine, find_account, "anna")
    assert unlocked is not None and locked_for(unlocked, now) == 0
    assert run_sync(engine, find_session, opened.token, now, timedelta(hours=1)) is None
    opened = run_sync(engine, open_session, account.id, now, timedelta(hours=1))
    _ok(config, "portal-account", "disable", "anna")
    assert run_sync(engine, find_session, opened.token, now, timedelta(hours=1)) is None
    _ok(config, "portal-account", "enable", "anna")
    assert "enabled" in _ok(config, "portal-account", "list")
