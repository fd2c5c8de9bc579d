"""Unit tests: the example dirsync.toml is valid, and the CSV example parses."""

from __future__ import annotations

from pathlib import Path

from dirsync.config import load_config
from dirsync.csv_source import parse_csv

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "dirsync"


def test_example_config_is_valid() -> None:
    cfg = load_config(EXAMPLES / "dirsync.toml", database_url="sqlite:///x.db")
    assert cfg.customer == "acme" and cfg.database_url == "sqlite:///x.db"
    assert cfg.ldap is not None and cfg.ldap.preset == "ad" and cfg.ldap.tls_verify
    assert [r.profile for r in cfg.profiles] == ["vip", "sales"]
    assert cfg.limits.max_disable_count == 50
    assert cfg.exclusions.matches("x", "svc-backup@corp.example")


def test_example_csv_parses() -> None:
    text = (EXAMPLES / "users.csv").read_text()
    users, problems = parse_csv(text, name="users.csv", region="DE")
    assert [u.address for u in users][:2] == ["anna.alpha@corp.example", "bert.beta@corp.example"]
    assert problems == [] and not users[2].enabled
