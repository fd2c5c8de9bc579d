"""`mailsms api-key`, through the real command: the key is shown once, stored hashed, revocable."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from bridge.api.keys import check_token, list_keys
from bridge.cli import app
from bridge.db.engine import open_engine
from bridge.db.store import run_sync
from tests.conftest import make_settings


def _invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "-c", str(config)])


def _ok(config: Path, *args: str) -> str:
    result = _invoke(config, *args)
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def _refused(config: Path, *args: str) -> str:
    result = _invoke(config, *args)
    assert result.exit_code == 1, (args, result.output)
    assert "Traceback" not in result.output and not isinstance(result.exception, Exception)
    return result.output


def _config(tmp_path: Path) -> Path:
    make_settings(tmp_path)
    config = tmp_path / "bridge.toml"
    _ok(config, "db", "upgrade")
    _ok(config, "customer", "add", "acme")
    _ok(config, "user", "add", "app@acme.example", "--customer", "acme")
    _ok(config, "user", "add", "ops@acme.example", "--customer", "acme")
    return config


def test_add_list_revoke(tmp_path: Path) -> None:
    config = _config(tmp_path)
    token = _ok(config, "api-key", "add", "erp", "--customer", "acme", "--user",
                "app@acme.example", "--network", "192.0.2.0/24").strip()  # fmt: skip
    assert token.startswith("msk_") and len(token) > 50
    db = (tmp_path / "bridge.db").read_bytes()
    secret = token.split("_", 2)[2]  # the secret itself may hold "_" (URL-safe base64)
    assert len(secret) >= 40
    assert token.encode() not in db and secret.encode() not in db  # hashed only
    engine = open_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    try:
        key = run_sync(engine, check_token, token)
        assert key is not None
        assert (key.customer, key.user, key.name) == ("acme", "app@acme.example", "erp")
        assert key.networks == ("192.0.2.0/24",)
        assert [key] == run_sync(engine, list_keys, "acme")  # the same row as listed
        assert key.allows("192.0.2.7") and not key.allows("198.51.100.1")
        assert (
            run_sync(engine, check_token, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        )
        listed = _ok(config, "api-key", "list")
        assert "erp" in listed and "active" in listed and token not in listed
        assert _ok(config, "api-key", "revoke", "erp", "--customer", "acme") == (
            "API key 'erp' of acme revoked\n"
        )
        assert run_sync(engine, check_token, token) is None
        assert "revoked" in _ok(config, "api-key", "list", "--customer", "acme")
    finally:
        engine.dispose()


def test_refusals_say_what_to_do(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert "several users: name one with --user" in _refused(
        config, "api-key", "add", "erp", "--customer", "acme"
    )
    assert "no user 'x@acme.example'" in _refused(
        config, "api-key", "add", "erp", "--customer", "acme", "--user", "x@acme.example"
    )
    assert "expected an address or CIDR" in _refused(
        config, "api-key", "add", "erp", "--customer", "acme", "--user", "app@acme.example",
        "--network", "nonsense",
    )  # fmt: skip
    _ok(config, "api-key", "add", "erp", "--customer", "acme", "--user", "app@acme.example")
    assert "named 'erp' already" in _refused(
        config, "api-key", "add", "erp", "--customer", "acme", "--user", "ops@acme.example"
    )
    assert "no active API key 'nope'" in _refused(
        config, "api-key", "revoke", "nope", "--customer", "acme"
    )
