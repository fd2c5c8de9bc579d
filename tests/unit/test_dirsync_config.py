"""Unit tests: the example [dirsync] table is valid in the bridge's settings file, and the CSV
example parses."""

from __future__ import annotations

from pathlib import Path

from bridge.settings import load_settings
from dirsync.config import from_settings
from dirsync.csv_source import parse_csv

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "dirsync"


def test_example_config_is_valid(tmp_path: Path) -> None:
    """Appended to the packaged settings file as its comments say, the table is valid."""
    bridge = (ROOT / "examples" / "systemd" / "bridge.toml").read_text(encoding="utf-8")
    table = (EXAMPLES / "bridge-dirsync.toml").read_text(encoding="utf-8")
    path = tmp_path / "bridge.toml"
    path.write_text(f"{bridge}\n{table}", encoding="utf-8")
    settings = load_settings(path, environ={"MAILSMS_SMSC_PASSWORD": "x"})
    cfg = from_settings(settings, str(path), database_url="sqlite:///x.db")
    assert cfg.customer == "acme" and cfg.database_url == "sqlite:///x.db"
    assert from_settings(settings, str(path)).database_url == settings.database_url
    assert cfg.report.ehlo_name == settings.mailer.ehlo_name == "sms-gw.example.com"
    assert cfg.ldap is not None and cfg.ldap.preset == "ad" and cfg.ldap.tls_verify
    assert [r.profile for r in cfg.profiles] == ["vip", "sales"]
    assert cfg.limits.max_disable_count == 50
    assert cfg.exclusions.matches("x", "svc-backup@corp.example")


def test_example_csv_parses() -> None:
    text = (EXAMPLES / "users.csv").read_text()
    users, problems = parse_csv(text, name="users.csv", region="DE")
    assert [u.address for u in users][:2] == ["anna.alpha@corp.example", "bert.beta@corp.example"]
    assert problems == [] and not users[2].enabled
