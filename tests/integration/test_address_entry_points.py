"""Every way a mail address enters the bridge refuses an invalid one with the same check."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bridge.cli import app
from bridge.db.engine import open_engine
from bridge.db.store import run_sync
from bridge.inbound.config import NumbersError, parse_numbers
from bridge.provision.file import TenantsError, load_tenants
from bridge.tenants.admin import list_users
from bridge.tenants.policy import PolicyError, check_setting
from dirsync.csv_source import parse_csv

BAD = "anna@corp..example"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "bridge.toml"
    path.write_text(
        f'database_url = "sqlite:///{tmp_path / "bridge.db"}"\n[sandbox]\nenabled = true\n'
    )
    return path


def test_cli_user_add(config: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade", "-c", str(config)]).exit_code == 0
    assert runner.invoke(app, ["customer", "add", "acme", "-c", str(config)]).exit_code == 0
    bad = runner.invoke(app, ["user", "add", BAD, "--customer", "acme", "-c", str(config)])
    assert bad.exit_code == 1
    assert f"'{BAD}' is not a valid mail address: " in bad.output
    good = runner.invoke(
        app, ["user", "add", "Anna@Corp.Example", "--customer", "acme", "-c", str(config)]
    )
    assert good.exit_code == 0, good.output
    engine = open_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    assert [u.address for u in run_sync(engine, list_users, None)] == ["anna@corp.example"]
    engine.dispose()


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        (f'[[customers.users]]\naddress = "{BAD}"\n', f"'{BAD}' is not a valid mail address"),
        (
            '[[customers.users]]\naddress = "anna@corp.example"\n'
            'settings = { notify_address = "ops@corp" }\n',
            "notify_address: 'ops@corp' is not a valid mail address",
        ),
    ],
)
def test_tenants_file(tmp_path: Path, toml: str, problem: str) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text('[[customers]]\nname = "acme"\n' + toml)
    with pytest.raises(TenantsError) as caught:
        load_tenants(path, default_country="DE")
    assert problem in "\n".join(caught.value.problems)


def test_settings_values() -> None:
    with pytest.raises(PolicyError, match="notify_address: 'x@y' is not a valid mail address"):
        check_setting("notify_address", "x@y", "user")
    with pytest.raises(PolicyError, match=r"report_recipients: .* is not a valid mail address"):
        check_setting("report_recipients", ["ok@corp.example", BAD], "customer")
    assert check_setting("notify_address", "Ops@Corp.Example", "user") == "ops@corp.example"


def test_numbers_file() -> None:
    with pytest.raises(NumbersError, match="is not a valid mail address"):
        parse_numbers(
            f'[[number]]\nnumber = "+4915550000001"\ncustomer = "acme"\nfallback = ["{BAD}"]\n'
        )


def test_dirsync_csv() -> None:
    header = "external_id,email,aliases,mobile,display_name,sender_id,cost_centre,profile,enabled"
    text = f"{header}\n1,{BAD},,,Anna,,,,true\n2,bert@corp.example,{BAD},,Bert,,,,true\n#END,2\n"
    users, problems = parse_csv(text, name="u.csv", region="DE")
    assert [u.address for u in users] == ["bert@corp.example"]
    assert any(BAD in p.describe() and "row skipped" in p.describe() for p in problems)
