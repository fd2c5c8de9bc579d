"""`mailsms login` and `mailsms customer access`, through the real command: what they store,
how they refuse wrong input, and that the SMTP listener enforces what they set."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import trustme
from typer.testing import CliRunner, Result

from bridge.cli import app
from bridge.db.engine import open_engine
from bridge.db.store import run_sync
from bridge.intake.access_store import get_access
from bridge.tenants.logins import find_credential, verify_password
from tests.conftest import make_settings
from tests.helpers import running_bridge
from tests.security.common import client_context, greeted, tls_settings


def _invoke(
    config: Path, *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> Result:
    return CliRunner().invoke(app, [*args, "-c", str(config)], env=env, input=input)


def _ok(config: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = _invoke(config, *args, env=env)
    assert result.exit_code == 0, (args, result.output)
    return result.output


def _refused(config: Path, *args: str, code: int = 1, env: dict[str, str] | None = None) -> str:
    """The one line a refused command prints (no traceback)."""
    result = _invoke(config, *args, env=env)
    assert result.exit_code == code, (args, result.output)
    assert "Traceback" not in result.output and not isinstance(result.exception, Exception)
    return result.output


def _bridge_db(tmp_path: Path) -> Path:
    """The test settings file (SQLite in tmp_path) with a migrated database and customer acme."""
    make_settings(tmp_path)
    config = tmp_path / "bridge.toml"
    _ok(config, "db", "upgrade")
    _ok(config, "customer", "add", "acme")
    return config


def _access(tmp_path: Path, customer: str) -> dict[str, Any]:
    engine = open_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    try:
        return run_sync(engine, get_access, customer)
    finally:
        engine.dispose()


def _login(tmp_path: Path, username: str) -> tuple[str, str, bool] | None:
    """(customer, password hash, enabled) of a stored login."""
    engine = open_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    try:
        row = run_sync(engine, find_credential, username)
    finally:
        engine.dispose()
    return None if row is None else (row.customer, row.password_hash, row.enabled)


def test_login_add_list_disable_enable(tmp_path: Path) -> None:
    config = _bridge_db(tmp_path)
    env = {"ACME_PASSWORD": "env-secret-1"}
    added = _ok(config, "login", "add", "acme-mta", "--customer", "acme", "--password-env",
                "ACME_PASSWORD", env=env)  # fmt: skip
    assert added == "login acme-mta added for customer acme\n"
    secret = tmp_path / "password"
    secret.write_text("file-secret-22\n", encoding="utf-8")
    _ok(config, "login", "add", "acme-file", "--customer", "acme", "--password-file", str(secret))
    prompted = _invoke(config, "login", "add", "acme-prompt", "--customer", "acme",
                       input="prompt-secret-3\nprompt-secret-3\n")  # fmt: skip
    assert prompted.exit_code == 0 and "prompt-secret-3" not in prompted.output
    for username, password in (
        ("acme-mta", "env-secret-1"),
        ("acme-file", "file-secret-22"),
        ("acme-prompt", "prompt-secret-3"),
    ):
        stored = _login(tmp_path, username)
        assert stored is not None and stored[0] == "acme" and stored[2] is True
        assert stored[1].startswith("scrypt$") and password not in stored[1]
        assert verify_password(password, stored[1])
        assert not verify_password(password + "x", stored[1])
    listed = [line.split() for line in _ok(config, "login", "list").splitlines()]
    assert listed == [
        [name, "acme", "enabled"] for name in ("acme-file", "acme-mta", "acme-prompt")
    ]

    assert _ok(config, "login", "disable", "acme-mta") == "login acme-mta disabled\n"
    disabled = _login(tmp_path, "acme-mta")
    assert disabled is not None and disabled[2] is False
    assert ["acme-mta", "acme", "disabled"] in [
        line.split() for line in _ok(config, "login", "list").splitlines()
    ]
    assert _ok(config, "login", "enable", "acme-mta") == "login acme-mta enabled\n"
    enabled = _login(tmp_path, "acme-mta")
    assert enabled is not None and enabled[2] is True


def test_login_refuses_wrong_input_with_one_line(tmp_path: Path) -> None:
    config = _bridge_db(tmp_path)
    env = {"SHORT": "too-short", "GOOD": "long-enough-1"}
    short = "mailsms: the password must have at least 10 characters\n"
    assert _refused(config, "login", "add", "x", "--customer", "acme", "--password-env", "SHORT",
                    env=env) == short  # fmt: skip
    assert _refused(config, "login", "add", "x", "--customer", "acme", "--password-env", "NOPE",
                    env=env) == "mailsms: environment variable NOPE is not set\n"  # fmt: skip
    assert _refused(config, "login", "add", "x", "--customer", "nope", "--password-env", "GOOD",
                    env=env) == (
        "mailsms: no customer 'nope'; create it with `mailsms customer add`\n"
    )  # fmt: skip
    _ok(config, "login", "add", "x", "--customer", "acme", "--password-env", "GOOD", env=env)
    assert _refused(config, "login", "add", "x", "--customer", "acme", "--password-env", "GOOD",
                    env=env) == "mailsms: login 'x' exists already\n"  # fmt: skip
    mismatch = _invoke(config, "login", "add", "y", "--customer", "acme",
                       input="first-secret-1\nother-secret-2\n")  # fmt: skip
    assert mismatch.exit_code != 0 and "do not match" in mismatch.output
    assert "--customer" in _refused(config, "login", "add", "y", code=2)
    missing = tmp_path / "missing"
    assert "does not exist" in _refused(
        config, "login", "add", "y", "--customer", "acme", "--password-file", str(missing), code=2
    )
    assert _refused(config, "login", "disable", "nobody") == (
        "mailsms: no login 'nobody'; see `mailsms login list`\n"
    )
    assert _refused(config, "login", "enable", "nobody") == (
        "mailsms: no login 'nobody'; see `mailsms login list`\n"
    )
    assert _login(tmp_path, "y") is None
    assert [line.split()[0] for line in _ok(config, "login", "list").splitlines()] == ["x"]


def test_customer_access_sets_and_shows_every_rule(tmp_path: Path) -> None:
    config = _bridge_db(tmp_path)
    assert json.loads(_ok(config, "customer", "access", "acme")) == {}
    every = {
        "networks": ["10.1.0.0/16", "2001:db8::/32"],
        "require_tls": True,
        "require_auth": True,
        "premium": True,
        "short_codes": True,
        "sequential_run": 7,
        "velocity_numbers": 30,
        "velocity_window": 120.0,
        "velocity_suffix_digits": 4,
        "watch_numbers": 9,
        "watch_prefixes": ["+234", "+882"],
    }
    shown = _ok(
        config, "customer", "access", "acme",
        "--network", "10.1.0.0/16", "--network", "2001:db8::/32",
        "--require-tls", "--require-auth", "--premium", "--short-codes",
        "--sequential-run", "7", "--velocity-numbers", "30", "--velocity-window", "120",
        "--velocity-suffix-digits", "4", "--watch-numbers", "9",
        "--watch-prefix", "+234", "--watch-prefix", "+882",
    )  # fmt: skip
    assert json.loads(shown) == every and _access(tmp_path, "acme") == every
    assert json.loads(_ok(config, "customer", "access", "acme")) == every
    switched_off = _ok(config, "customer", "access", "acme", "--no-require-tls",
                       "--no-require-auth", "--no-premium", "--no-short-codes")  # fmt: skip
    off = {**every, "require_tls": False, "require_auth": False, "premium": False,
           "short_codes": False}  # fmt: skip
    assert json.loads(switched_off) == off and _access(tmp_path, "acme") == off
    no_networks = _ok(config, "customer", "access", "acme", "--no-networks")
    assert json.loads(no_networks)["networks"] == [] and _access(tmp_path, "acme")["networks"] == []


def test_customer_access_refuses_wrong_input_and_changes_nothing(tmp_path: Path) -> None:
    config = _bridge_db(tmp_path)
    _ok(config, "customer", "access", "acme", "--network", "10.1.0.0/16")
    before = _access(tmp_path, "acme")
    for args, message in (
        (["--network", "10.0.0.300/8"], "10.0.0.300/8"),
        (["--velocity-window", "0"], "access: velocity_window: expected 1 to 86400 seconds"),
        (["--velocity-suffix-digits", "9"], "access: velocity_suffix_digits: expected 1 to 6"),
        (["--sequential-run", "-1"], "sequential_run: >= 0"),
        (["--watch-prefix", "234"], "access: watch_prefixes: '234' is not like '+234'"),
    ):
        output = _refused(config, "customer", "access", "acme", *args)
        assert output.startswith("mailsms: ") and message in output, (args, output)
        assert output.count("\n") == 1
    assert _refused(config, "customer", "access", "nope", "--premium") == (
        "mailsms: no customer 'nope'; see `mailsms customer list`\n"
    )
    assert "--sequential-run" in _refused(
        config, "customer", "access", "acme", "--sequential-run", "many", code=2
    )
    assert _access(tmp_path, "acme") == before


async def _mail_from(
    port: int, ca: trustme.CA, *, tls: bool = False, login: tuple[str, str] | None = None
) -> str:
    """One session from 127.0.0.1: optionally STARTTLS and AUTH PLAIN; the reply to MAIL."""
    c = await greeted("127.0.0.1", port)
    try:
        if tls:
            assert (await c.command("STARTTLS")).startswith("220")
            await c.starttls(client_context(ca))
            await c.command("EHLO probe")
        if login is not None:
            token = base64.b64encode(f"\0{login[0]}\0{login[1]}".encode()).decode()
            answer = await c.command(f"AUTH PLAIN {token}", timeout=30)
            if not answer.startswith("235"):
                return answer
        return await c.command("MAIL FROM:<ops@acme.example>")
    finally:
        await c.close()


async def _until(expected: str, port: int, ca: trustme.CA, **session: Any) -> None:
    """Wait until MAIL gets `expected`: a running bridge reuses a sender's row for up to
    5 s (bridge/intake/senders.py), so a changed rule holds from then on."""
    answers: list[str] = []

    async def answered() -> bool:
        answers.append(await _mail_from(port, ca, **session))
        return answers[-1].startswith(expected)

    deadline = asyncio.get_running_loop().time() + 10
    while not await answered():
        assert asyncio.get_running_loop().time() < deadline, (expected, answers[-1])
        await asyncio.sleep(0.2)


async def test_the_listener_enforces_what_the_commands_set(tmp_path: Path, ca: trustme.CA) -> None:
    settings = tls_settings(tmp_path, ca)  # plaintext allowed from 127.0.0.1 only
    config = tmp_path / "bridge.toml"
    _ok(config, "db", "upgrade")
    _ok(config, "customer", "add", "acme", "--network", "127.0.0.0/8")
    _ok(config, "user", "add", "ops@acme.example", "--customer", "acme")
    env = {"ACME_PASSWORD": "acme-secret-1"}
    _ok(config, "login", "add", "acme-mta", "--customer", "acme", "--password-env",
        "ACME_PASSWORD", env=env)  # fmt: skip
    login = ("acme-mta", "acme-secret-1")
    async with running_bridge(settings) as (_, ep):
        port = ep.smtp[1]
        assert (await _mail_from(port, ca)).startswith("250")
        _ok(config, "customer", "access", "acme", "--require-tls")
        await _until("530 5.7.0 Must issue a STARTTLS", port, ca)
        assert (await _mail_from(port, ca, tls=True)).startswith("250")
        _ok(config, "customer", "access", "acme", "--no-require-tls", "--require-auth")
        await _until("530 5.7.0 Sender <ops@acme.example> must authenticate", port, ca, tls=True)
        assert (await _mail_from(port, ca, tls=True, login=login)).startswith("250")
        _ok(config, "login", "disable", "acme-mta")
        assert (await _mail_from(port, ca, tls=True, login=login)).startswith("535")
        _ok(config, "login", "enable", "acme-mta")
        _ok(config, "customer", "access", "acme", "--no-require-auth", "--network", "10.9.0.0/16")
        await _until("550 5.7.1 Client address 127.0.0.1", port, ca)
        _ok(config, "customer", "access", "acme", "--no-networks")  # AUTH only
        await _until("530 5.7.0 Sender <ops@acme.example> must authenticate", port, ca)
        assert (await _mail_from(port, ca, tls=True, login=login)).startswith("250")
