"""`mailsms smpp-account`, through the real command: what it stores and how it refuses."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from bridge.cli import app
from bridge.db.engine import open_engine
from bridge.db.store import run_sync
from bridge.smpp_server.accounts import Account, find_account
from bridge.tenants.logins import verify_password
from tests.conftest import make_settings


def _invoke(config: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, [*args, "-c", str(config)], env=env)


def _ok(config: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = _invoke(config, *args, env=env)
    assert result.exit_code == 0, (args, result.output)
    return result.output


def _refused(config: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = _invoke(config, *args, env=env)
    assert result.exit_code == 1, (args, result.output)
    assert "Traceback" not in result.output and not isinstance(result.exception, Exception)
    return result.output


def _account(tmp_path: Path, system_id: str) -> Account | None:
    engine = open_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    try:
        return run_sync(engine, find_account, system_id)
    finally:
        engine.dispose()


def _config(tmp_path: Path) -> Path:
    make_settings(tmp_path)
    config = tmp_path / "bridge.toml"
    _ok(config, "db", "upgrade")
    _ok(config, "customer", "add", "acme")
    _ok(config, "user", "add", "app@acme.example", "--customer", "acme")
    return config


def test_add_list_disable_enable_password_limits(tmp_path: Path) -> None:
    config = _config(tmp_path)
    env = {"PW": "s3cret", "PW2": "n3w"}
    added = _ok(config, "smpp-account", "add", "acme1", "--user", "app@acme.example",
                "--network", "192.0.2.0/24", "--bind-type", "transmitter", "--window", "50",
                "--throughput", "20", "--password-env", "PW", env=env)  # fmt: skip
    assert added == "SMPP account acme1 added for app@acme.example\n"
    account = _account(tmp_path, "acme1")
    assert account is not None
    assert (account.customer, account.networks, account.bind_types) == (
        "acme",
        ("192.0.2.0/24",),
        ("transmitter",),
    )
    assert (account.window, account.throughput, account.enabled) == (50, 20.0, True)
    assert verify_password("s3cret", account.password_hash)
    assert account.allows_network("192.0.2.7") and not account.allows_network("127.0.0.1")
    [line] = _ok(config, "smpp-account", "list").splitlines()
    assert line.split()[:4] == ["acme1", "app@acme.example", "acme", "enabled"]
    assert "waiting=0" in line
    _ok(config, "smpp-account", "disable", "acme1")
    assert _account(tmp_path, "acme1").enabled is False  # type: ignore[union-attr]
    _ok(config, "smpp-account", "enable", "acme1")
    _ok(config, "smpp-account", "password", "acme1", "--password-env", "PW2", env=env)
    changed = _account(tmp_path, "acme1")
    assert changed is not None and changed.enabled
    assert verify_password("n3w", changed.password_hash)
    _ok(config, "smpp-account", "limits", "acme1", "--max-binds", "4", "--network", "10.0.0.1")
    limited = _account(tmp_path, "acme1")
    assert limited is not None and (limited.max_binds, limited.networks) == (4, ("10.0.0.1/32",))


def test_refusals_are_one_line(tmp_path: Path) -> None:
    config = _config(tmp_path)
    env = {"PW": "s3cret", "LONG": "much-too-long"}
    base = ("smpp-account", "add", "acme1", "--network", "127.0.0.1")
    assert "no user" in _refused(config, *base, "--user", "x@y.example", "--password-env", "PW",
                                 env=env)  # fmt: skip
    assert "at most 8" not in _refused(
        config, *base, "--user", "app@acme.example", "--password-env", "NOPE", env=env
    )
    assert "1 to 8 characters" in _refused(
        config, *base, "--user", "app@acme.example", "--password-env", "LONG", env=env
    )
    assert "expected an address or CIDR" in _refused(
        config, "smpp-account", "add", "acme1", "--network", "nonsense",
        "--user", "app@acme.example", "--password-env", "PW", env=env,
    )  # fmt: skip
    _ok(config, *base, "--user", "app@acme.example", "--password-env", "PW", env=env)
    assert "exists already" in _refused(
        config, *base, "--user", "app@acme.example", "--password-env", "PW", env=env
    )
    assert "no SMPP account" in _refused(config, "smpp-account", "disable", "nope")
