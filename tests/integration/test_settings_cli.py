"""The settings, list and report commands, through the CLI (and once through `mailsms` itself)."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bridge.cli import app
from bridge.db.engine import open_engine, upgrade
from bridge.db.store import run_sync
from bridge.tenants.admin import ensure_demo
from tests.integration.reports_seed import seed

MAILSMS = str(Path(sys.executable).parent / "mailsms")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "bridge.toml"
    path.write_text(
        f'database_url = "sqlite:///{tmp_path / "bridge.db"}"\n[sandbox]\nenabled = true\n'
        '[defaults]\nsender_id = "Bridge"\n',
        encoding="utf-8",
    )
    engine = open_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    upgrade(engine)
    run_sync(engine, ensure_demo)
    seed(engine, tmp_path)
    engine.dispose()
    return path


def _run(config: Path, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "-c", str(config)])
    assert result.exit_code == 0, result.output
    return result.output


def _sources(output: str) -> dict[str, tuple[str, str]]:
    rows = [line.split() for line in output.splitlines()[2:]]
    return {r[0]: (" ".join(r[1:-1]), r[-1]) for r in rows}


def test_settings_show_set_unset_name_the_source(config: Path) -> None:
    shown = _sources(_run(config, "settings", "show", "bob@acme.example"))
    assert shown["sender_id"] == ("ACME", "customer")
    assert shown["priority"] == ("express", "profile")
    assert shown["cost_centre"] == ("9000", "user")
    assert shown["encoding"] == ("auto", "default")
    _run(config, "settings", "set", "--profile", "acme/sap", "cost_centre", "7000")
    _run(config, "settings", "unset", "--user", "bob@acme.example", "cost_centre")
    _run(config, "settings", "set", "--customer", "acme", "cleaning", "quotes,signature")
    shown = _sources(_run(config, "settings", "show", "bob@acme.example"))
    assert shown["cost_centre"] == ("7000", "profile")
    assert shown["cleaning"] == ("quotes,signature", "customer")


def test_settings_set_refuses_invalid_values(config: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "settings",
            "set",
            "--user",
            "bob@acme.example",
            "sender_id",
            "Way Too Long!",
            "-c",
            str(config),
        ],
    )
    assert result.exit_code == 1 and "up to 11 letters" in result.output


def test_list_commands_and_csv_import(config: Path, tmp_path: Path) -> None:
    _run(config, "list", "add", "team", "--customer", "acme", "--fields", "city")
    members = tmp_path / "m.csv"
    members.write_text("number,first_name,city\n01701111111,Anna,Berlin\n", encoding="utf-8")
    assert "+1 added" in _run(config, "list", "import", "team", str(members), "--customer", "acme")
    _run(
        config,
        "list",
        "add-member",
        "team",
        "+491702222222",
        "--customer",
        "acme",
        "--first-name",
        "Ben",
    )
    out = _run(config, "list", "members", "team", "--customer", "acme")
    assert "+491701111111" in out and "Berlin" in out and "+491702222222" in out
    assert "members=2" in _run(config, "list", "show", "--customer", "acme")
    _run(config, "list", "remove-member", "team", "+491702222222", "--customer", "acme")
    assert "members=1" in _run(config, "list", "show", "--customer", "acme")


def test_report_commands(config: Path) -> None:
    table = _run(config, "report", "orders", "--month", "2026-10", "--profile", "sales")
    assert [line.split()[0] for line in table.splitlines()[1:]] == ["M1.1", "M2.1", "M3.1"]
    monthly = _run(config, "report", "monthly", "--customer", "acme", "--month", "2026-10")
    assert "Parts:     6 (billed)" in monthly
    assert "acme-boss@acme.example" in _run(
        config, "report", "monthly", "--customer", "acme", "--month", "2026-10", "--send", "--csv"
    )
    assert "would purge" in _run(config, "report", "purge", "--dry-run")


def test_mailsms_itself_shows_sources_and_failed_orders(config: Path) -> None:
    show = subprocess.run(
        [MAILSMS, "settings", "show", "demo@example.com", "-c", str(config)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert _sources(show)["sender_id"][1] in ("customer", "default")
    assert _sources(show)["notify"] == ("all", "user")
    out = subprocess.run(
        [
            MAILSMS,
            "report",
            "orders",
            "--status",
            "failed",
            "--format",
            "csv",
            "--since",
            "2026-10-01",
            "--until",
            "2026-11-01",
            "-c",
            str(config),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["id"], r["status"]) for r in rows] == [("M2.1", "failed"), ("M5.1", "failed")]


def test_apply_reads_national_list_numbers_in_the_bridges_country(
    config: Path, tmp_path: Path
) -> None:
    """A tenants file whose customer names no country reads `0664…` as the bridge's
    `[defaults] default_country` says (here Austria), as `list import` does."""
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "[defaults]\n", '[defaults]\ndefault_country = "AT"\n'
        ),
        encoding="utf-8",
    )
    (tmp_path / "crew.csv").write_text("msisdn,first_name\n0664 1234567,Eva\n", encoding="utf-8")
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(
        '[[customers]]\nname = "alpine"\n[[customers.lists]]\nname = "crew"\n'
        'members_csv = "crew.csv"\n',
        encoding="utf-8",
    )
    _run(config, "apply", str(tenants))
    assert "+436641234567" in _run(config, "list", "members", "crew", "--customer", "alpine")
