"""The `mailsms` command itself: --version, readable help for every command, which
database a command uses when run from another directory, and that only `serve` and
`db upgrade` migrate it."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
from alembic import command as alembic
from typer.testing import CliRunner, Result

from bridge.cli import app
from bridge.db.engine import alembic_config, current_revision, head_revision, open_engine, upgrade
from bridge.sandbox.rules import Failure, SandboxRule, read_file

ROOT = Path(__file__).resolve().parents[2]


def _invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path below `command` (a click group or command, as Typer builds it)."""
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


def test_version_is_the_project_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for args in (["--version"], ["version"]):
        result = _invoke(*args)
        assert result.exit_code == 0 and result.output == f"mailsms {version['version']}\n"


def test_every_help_shows_flags_as_flags_and_keeps_brackets() -> None:
    root = typer.main.get_command(app)
    paths = _commands(root)
    assert len(paths) > 40
    for path in paths:
        result = _invoke(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, (path, result.output)
        command: Any = root
        for name in path:
            command = command.commands[name]
        text = " ".join(result.output.split())
        for param in command.params:
            if getattr(param, "is_flag", False) and param.secondary_opts:
                assert f"{param.opts[0]} / {param.secondary_opts[0]}" in text, (path, param)
            help_text = " ".join((getattr(param, "help", None) or "").split())
            for bracket in re.findall(r"\[[a-z_.]+\]", help_text):  # e.g. "[safety]"
                assert bracket in text, (path, bracket)


def test_sandbox_help_explains_failed_deliveries() -> None:
    text = _invoke("sandbox", "--help").output
    assert "mailsms sandbox fail +491701234567" in text and "sandbox delay" in text
    assert all(f.value in text for f in Failure)
    assert 'receipt = "failed"' in text


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory without a bridge in it, as the current directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILSMS_DATABASE_URL", raising=False)
    monkeypatch.delenv("MAILSMS_CONFIG", raising=False)
    return tmp_path


@pytest.mark.parametrize(
    "command",
    [
        ["customer", "list"],
        ["user", "list"],
        ["orders"],
        ["login", "list"],
        ["stoplist", "list", "--customer", "demo"],
        ["settings", "show", "demo@example.com"],
        ["report", "orders"],
    ],
)
def test_admin_commands_elsewhere_name_the_missing_database_and_create_none(
    elsewhere: Path, command: list[str]
) -> None:
    result = _invoke(*command)
    assert result.exit_code == 1, result.output
    first = result.output.splitlines()[0]
    assert first.startswith(f"mailsms: no database at {elsewhere / 'var' / 'bridge.db'} ")
    assert "relative to the current directory" in first and "-c FILE" in first
    assert not (elsewhere / "var").exists()


def test_db_upgrade_creates_it_and_later_commands_name_it(elsewhere: Path) -> None:
    created = _invoke("db", "upgrade")
    assert created.exit_code == 0, created.output
    where = f"mailsms: database {elsewhere / 'var' / 'bridge.db'}"
    assert where in created.output
    listed = _invoke("customer", "list")
    assert listed.exit_code == 0 and listed.stderr.strip() == where


def test_config_from_the_environment_points_at_the_database(
    elsewhere: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("bridge-home")
    config = home / "bridge.toml"
    config.write_text(
        f'database_url = "sqlite:///{home / "bridge.db"}"\n[sandbox]\nenabled = true\n',
        encoding="utf-8",
    )
    missing = _invoke("customer", "list", env={"MAILSMS_CONFIG": str(config)})
    assert missing.exit_code == 1
    assert f"from settings file {config})" in missing.output  # absolute: no "relative to"
    assert _invoke("db", "upgrade", env={"MAILSMS_CONFIG": str(config)}).exit_code == 0
    listed = _invoke("customer", "list", env={"MAILSMS_CONFIG": str(config)})
    assert listed.exit_code == 0 and listed.stderr == ""  # an absolute path needs no note
    assert (home / "bridge.db").exists() and not (elsewhere / "var").exists()


ADMIN_COMMANDS = [
    ["customer", "list"],
    ["customer", "access", "demo"],
    ["user", "list"],
    ["login", "list"],
    ["orders"],
    ["orders", "release", "M1.1"],
    ["held", "list"],
    ["notices"],
    ["stoplist", "list"],
    ["inbound", "list"],
    ["inbound", "messages"],
    ["inbound", "lists"],
    ["smsc", "stats"],
    ["dirsync", "runs"],
    ["settings", "show", "demo@example.com"],
    ["list", "show", "--customer", "demo"],
    ["report", "orders"],
]


def test_only_db_upgrade_migrates_other_commands_say_to_run_it(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path / "bridge.db"}"\n[sandbox]\nenabled = true\n'
        '[dirsync]\ncustomer = "demo"\n',
        encoding="utf-8",
    )
    engine = open_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    with engine.connect():
        pass  # a database file without a schema
    empty = _invoke("customer", "list", "-c", str(config))
    assert empty.exit_code == 1 and empty.output == (
        f"mailsms: the database {tmp_path / 'bridge.db'} has no schema yet; "
        "run `mailsms db upgrade`\n"
    )
    upgrade(engine)
    with engine.begin() as conn:
        cfg = alembic_config(str(engine.url))
        cfg.attributes["connection"] = conn
        alembic.downgrade(cfg, "-1")  # as left by the previous version of mailsms
    older = current_revision(engine)
    assert older is not None and older != head_revision()
    expected = (
        f"the database {tmp_path / 'bridge.db'} is at schema revision {older}, this version "
        f"of mailsms needs {head_revision()}; run `mailsms db upgrade`\n"
    )
    for args in ADMIN_COMMANDS:
        result = _invoke(*args, "-c", str(config))
        assert (result.exit_code, result.output) == (1, f"mailsms: {expected}"), args
    users = tmp_path / "users.csv"
    users.write_text("email,name\na@b.example,A\n", encoding="utf-8")
    synced = _invoke("dirsync", "-c", str(config), "--csv", str(users))
    assert (synced.exit_code, synced.output) == (1, f"dirsync: {expected}")
    assert current_revision(engine) == older  # nothing migrated it
    upgraded = _invoke("db", "upgrade", "-c", str(config))
    assert upgraded.exit_code == 0 and f"database at revision {head_revision()}" in upgraded.output
    assert _invoke("customer", "list", "-c", str(config)).exit_code == 0
    engine.dispose()


def test_dirsync_elsewhere_names_the_missing_database_and_creates_none(elsewhere: Path) -> None:
    (elsewhere / "dirsync.toml").write_text('customer = "demo"\n', encoding="utf-8")
    (elsewhere / "users.csv").write_text("email,name\na@b.example,A\n", encoding="utf-8")
    result = _invoke("dirsync", "-c", "dirsync.toml", "--csv", "users.csv")
    assert result.exit_code == 2, result.output
    assert f"dirsync: no database at {elsewhere / 'var' / 'bridge.db'} " in result.output
    assert "database_url in the dirsync settings" in result.output
    assert not (elsewhere / "var").exists()


def test_sandbox_rule_commands_write_the_rules_file_the_sandbox_reads(elsewhere: Path) -> None:
    rules_file = elsewhere / "var" / "sandbox" / "rules.json"
    assert _invoke("sandbox", "fail", "+491701234567", "--as", "expired").exit_code == 0
    delayed = _invoke("sandbox", "delay", "+491701234567", "90")
    assert delayed.exit_code == 0 and str(rules_file) in delayed.output
    assert _invoke("sandbox", "fail", "+49 152*", "--as", "rejected").exit_code == 0
    assert read_file(rules_file) == [
        SandboxRule("+491701234567", Failure.EXPIRED, 90.0),
        SandboxRule("+49152*", Failure.REJECTED, None),
    ]
    listed = _invoke("sandbox", "rules").output.splitlines()
    assert listed[0].startswith("+491701234567") and "EXPIRED" in listed[0] and "90 s" in listed[0]
    bad = _invoke("sandbox", "fail", "01701234567")
    assert bad.exit_code == 1 and "expected an international number" in bad.output
    assert _invoke("sandbox", "clear", "+49152*").output == "removed 1 rule(s)\n"
    assert [r.number for r in read_file(rules_file)] == ["+491701234567"]
    assert _invoke("sandbox", "clear").output == "removed 1 rule(s)\n"
    assert read_file(rules_file) == []


def test_sandbox_inbox_elsewhere_names_the_file_it_looked_for(elsewhere: Path) -> None:
    result = _invoke("sandbox", "inbox")
    assert result.exit_code == 0
    assert f"there is no inbox {elsewhere / 'var' / 'sandbox' / 'inbox.jsonl'} yet" in result.output


def test_config_check_hides_every_secret(tmp_path: Path) -> None:
    """`config check` prints the effective settings, never a password, secret or token:
    not an SMSC's, the relay's, the sandbox's, nor the one in a database URL (dirsync's
    come only from the environment or a file)."""
    secrets = ["smsc-pass-1", "relay-pass-2", "db-pass-3", "sandbox-pass-4"]
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'database_url = "postgresql+psycopg://bridge:{secrets[2]}@db.example/bridge"\n'
        f'[mailer]\nmode = "smtp"\nrelay_host = "relay.example"\npassword = "{secrets[1]}"\n'
        'username = "bridge"\n'
        '[[smsc]]\nname = "operator"\nhost = "smsc.example"\nport = 2775\n'
        f'system_id = "bridge"\npassword = "{secrets[0]}"\n'
        '[[routes]]\nprefix = ""\ntransports = ["operator"]\n'
        f'[sandbox]\nenabled = false\npassword = "{secrets[3]}"\n',
        encoding="utf-8",
    )
    result = _invoke("config", "check", "-c", str(config))
    assert result.exit_code == 0, result.output
    assert "********" in result.output and "bridge:***@db.example" in result.output
    for secret in secrets:
        assert secret not in result.output


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # nothing listens on port 1: one line naming the database (without its password)
        (
            "postgresql://bridge:pw-1@127.0.0.1:1/bridge",
            "bridge:***@127.0.0.1:1/bridge unavailable",
        ),
        # libpq's host list in the netloc: say how to write several hosts
        ("postgresql://bridge:pw-1@h1:5432,h2:5432/bridge", "?host=h1:5432&host=h2:5432"),
    ],
)
def test_serve_names_a_database_it_cannot_use_in_one_line(
    tmp_path: Path, url: str, expected: str
) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(f'database_url = "{url}"\n[sandbox]\nenabled = true\n', encoding="utf-8")
    result = _invoke("serve", "-c", str(config))
    assert result.exit_code == 1
    assert expected in result.output and "Traceback" not in result.output
    assert "pw-1" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["user", "disable", "nobody@example.com"], "nobody@example.com"),
        (["user", "enable", "nobody@example.com"], "nobody@example.com"),
        (["user", "add", "anna@example.com", "--customer", "nosuch"], "nosuch"),
        (["customer", "add", "acme"], "acme"),
        (["login", "disable", "nosuch"], "nosuch"),
        (["portal-account", "enable", "nosuch"], "nosuch"),
        (["smpp-account", "disable", "nosuch"], "nosuch"),
        (["smpp-account", "limits", "nosuch", "--window", "5"], "nosuch"),
        (["api-key", "revoke", "nosuch", "--customer", "acme"], "nosuch"),
        (["push-template", "show", "--customer", "nosuch"], "nosuch"),
        (["smpp-account", "limits", "nosuch"], "nothing to change"),
        (["smpp-account", "limits", "nosuch", "--window", "0"], "window: at least 1"),
        (["smpp-account", "limits", "nosuch", "--throughput", "-1"], "0 (no limit) or more"),
        (["held", "release", "nosuch", "other"], "not held: nosuch, other; nothing changed"),
        (["held", "refuse", "nosuch", "--customer", "acme"], "not held among those selected"),
    ],
)
def test_a_request_that_cannot_be_carried_out_stops_with_one_sentence(
    elsewhere: Path, command: list[str], says: str
) -> None:
    """An unknown user, account, key or customer, or a name already taken: exit status 1,
    one line `mailsms: …` naming it, no traceback, nothing written."""
    assert _invoke("db", "upgrade").exit_code == 0
    assert _invoke("customer", "add", "acme").exit_code == 0
    before = _dump(elsewhere / "var" / "bridge.db")
    result = _invoke(*command)
    assert result.exit_code == 1, result.output
    said = [line for line in result.stderr.splitlines() if not line.startswith("mailsms: database")]
    assert len(said) == 1 and said[0].startswith("mailsms: ") and says in said[0], said
    assert "Traceback" not in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)
    assert _dump(elsewhere / "var" / "bridge.db") == before


def _dump(db: Path) -> list[str]:
    """The database's schema and rows as SQL (what a write would change)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return list(conn.iterdump())
