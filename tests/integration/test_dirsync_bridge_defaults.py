"""dirsync and the bridge's settings: default country for national numbers, EHLO name."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from bridge.db.engine import open_engine, upgrade
from bridge.settings import load_settings
from bridge.tenants.sync_status import SyncRunStatus
from bridge.tenants.tables import Customer, User
from dirsync.config import from_settings, load_config, parse_config
from dirsync.report import Outcome, send_mail
from dirsync.run import run_sync
from tests.peers.smtp_relay import smtp_relay

HEADER = "external_id,email,aliases,mobile,display_name,sender_id,cost_centre,profile,enabled"


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = open_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    upgrade(eng)
    with Session(eng) as s, s.begin():
        s.add(Customer(name="acme", settings={}))  # no default_country of its own
    return eng


def _csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "u.csv"
    path.write_text("\n".join([HEADER, *rows, f"#END,{len(rows)}"]) + "\n")
    return path


def _mobiles(engine: Engine) -> dict[str, str | None]:
    with Session(engine) as s:
        return {u.address: u.mobile for u in s.execute(select(User)).scalars()}


def test_national_numbers_use_the_bridges_default_country(tmp_path: Path, engine: Engine) -> None:
    csv = _csv(tmp_path, "1,anna@corp.example,,0170 4444444,Anna,,,,true")
    outcome = run_sync(parse_config({"customer": "acme"}), engine, csv=csv)
    assert outcome.status == "applied", outcome.message
    assert outcome.plan is not None and outcome.plan.problems == []
    assert _mobiles(engine) == {"anna@corp.example": "+491704444444"}


def test_bridge_config_gives_default_country_database_and_ehlo_name(
    tmp_path: Path, engine: Engine
) -> None:
    (tmp_path / "bridge.toml").write_text(
        f'database_url = "sqlite:///{tmp_path / "bridge.db"}"\n'
        '[smtp]\nhostname = "sms.corp.example"\n[sandbox]\nenabled = true\n'
        '[defaults]\ndefault_country = "AT"\n'
    )
    (tmp_path / "dirsync.toml").write_text(
        'customer = "acme"\nbridge_config = "bridge.toml"\n[report]\nmail_to = ["a@corp.example"]\n'
    )
    cfg = load_config(tmp_path / "dirsync.toml")
    assert cfg.database_url == f"sqlite:///{tmp_path / 'bridge.db'}"
    assert cfg.bridge_default_country == "AT" and cfg.report.ehlo_name == "sms.corp.example"
    csv = _csv(tmp_path, "1,anna@corp.example,,0664 1234567,Anna,,,,true")
    assert run_sync(cfg, engine, csv=csv).status == "applied"
    assert _mobiles(engine) == {"anna@corp.example": "+436641234567"}


def test_the_dirsync_table_takes_them_from_its_own_settings_file(
    tmp_path: Path, engine: Engine
) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(
        f'database_url = "sqlite:///{tmp_path / "bridge.db"}"\n'
        '[smtp]\nhostname = "sms.corp.example"\n[sandbox]\nenabled = true\n'
        '[defaults]\ndefault_country = "AT"\n'
        '[dirsync]\ncustomer = "acme"\n[dirsync.report]\nmail_to = ["a@corp.example"]\n'
    )
    cfg = from_settings(load_settings(path, environ={}), str(path))
    assert cfg.database_url == f"sqlite:///{tmp_path / 'bridge.db'}"
    assert cfg.bridge_default_country == "AT" and cfg.report.ehlo_name == "sms.corp.example"
    csv = _csv(tmp_path, "1,anna@corp.example,,0664 1234567,Anna,,,,true")
    assert run_sync(cfg, engine, csv=csv).status == "applied"
    assert _mobiles(engine) == {"anna@corp.example": "+436641234567"}


async def test_report_mail_greets_with_a_fully_qualified_name(tmp_path: Path) -> None:
    async with smtp_relay(fqdn_helo=True) as (relay, port):
        cfg = parse_config(
            {
                "customer": "acme",
                "report": {"mail_to": ["admin@corp.example"], "smtp_host": "127.0.0.1",
                           "smtp_port": port},
            }
        )  # fmt: skip
        await send_mail(cfg.report, Outcome("acme", "csv", SyncRunStatus.FAILED, "x"))
    assert [m.helo for m in relay.mails] == ["mailsms.localdomain"]
    assert [e.rcpt_tos for e in relay.accepted] == [["admin@corp.example"]]
