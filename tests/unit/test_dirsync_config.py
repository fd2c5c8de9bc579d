"""Unit tests: the example [dirsync] table is valid in the bridge's settings file, and the CSV
example parses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge.errors import ConfigError
from bridge.settings import load_settings
from dirsync.config import Endpoint, from_settings, ldap_endpoint, parse_config
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


def ldap_table(url: str) -> dict[str, Any]:
    return {"customer": "acme", "ldap": {"url": url, "bind_dn": "cn=svc", "base_dns": ["dc=x"],
            "password_env": "P", "starttls": True}}  # fmt: skip


def test_ldap_url_forms() -> None:
    cases = {
        "ldaps://dc1.corp.example": Endpoint("dc1.corp.example", 636, True),
        "ldap://dc1.corp.example:3268/": Endpoint("dc1.corp.example", 3268, False),
        "LDAPS://DC1:1636": Endpoint("dc1", 1636, True),
        "ldap://[2001:db8::1]": Endpoint("2001:db8::1", 389, False),
    }
    for url, endpoint in cases.items():
        cfg = parse_config(ldap_table(url))
        assert cfg.ldap is not None and ldap_endpoint(cfg.ldap.url) == endpoint, url


def test_a_bad_ldap_url_is_a_config_error_saying_what_to_write() -> None:
    for url in ("ldap://dc1:389x", "ldap://dc1:99999", "ldap://dc1:0", "ldap://dc1:",
                "ldap://[::1", "http://dc1", "ldap://:389", "ldap://dc1/dc=x",
                "ldap://dc1?x", "ldap://dc 1"):  # fmt: skip
        with pytest.raises(ConfigError) as err:
            parse_config(ldap_table(url))
        message = str(err.value)
        assert message.startswith("ldap.url: ") and "\n" not in message, message
        assert "ldap://host[:port]" in message or "from 1 to 65535" in message, message


def test_a_password_in_the_ldap_url_is_refused_and_not_repeated() -> None:
    for url in ("ldap://svc:Secr3t@dc1", "ldaps://svc@dc1:636", "ldap://svc:Secr3t@dc1:x"):
        with pytest.raises(ConfigError) as err:
            parse_config(ldap_table(url))
        message = str(err.value)
        assert message.startswith("ldap.url: must not hold a user name or password"), message
        assert "Secr3t" not in message and "svc" not in message
        assert "bind_dn" in message and "password_env" in message
