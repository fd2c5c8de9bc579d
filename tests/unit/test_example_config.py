"""`mailsms config example`: its header states the real built-in defaults, and both copies agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from bridge.cli import app
from bridge.settings import EMBEDDED_DEFAULT, Settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "bridge" / "example.toml").read_text(encoding="utf-8")


def _listed(after: str) -> dict[str, Any]:
    """The `#   key = value` lines of the header that follow the line containing `after`."""
    lines = EXAMPLE.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) + 1
    found: dict[str, Any] = {}
    for line in lines[start:]:
        m = re.fullmatch(r"#   ([a-z_.]+) = (.+)", line)
        if m is None:
            break
        found[m[1]] = tomllib.loads(f"v = {m[2]}")["v"]
    return found


def _defaults_that_differ() -> dict[str, Any]:
    """Every key set in the example whose value is not the built-in default, with the default."""
    example = tomllib.loads(EXAMPLE)
    differ: dict[str, Any] = {}
    for name, value in example.items():
        default = Settings.model_fields[name].default
        if isinstance(value, dict):
            section = default.model_dump(mode="json")
            differ.update({f"{name}.{k}": section[k] for k, v in value.items() if section[k] != v})
        elif not isinstance(value, list) and value != default:  # [[smsc]], [[routes]]: examples
            differ[name] = default
    return differ


def test_header_lists_exactly_the_keys_whose_default_differs() -> None:
    assert _listed("except these") == _defaults_that_differ()
    assert "[[smsc]] and [[routes]]: none" in EXAMPLE
    assert Settings.model_fields["smsc"].default == ()
    assert Settings.model_fields["routes"].default == ()


def test_header_states_the_embedded_default() -> None:
    flat = {
        (f"{k}.{kk}" if isinstance(v, dict) else k): (vv if isinstance(v, dict) else v)
        for k, v in EMBEDDED_DEFAULT.items()
        for kk, vv in (v.items() if isinstance(v, dict) else [(None, v)])
    }
    assert _listed("with these changes") == flat
    sandbox = Settings.model_fields["sandbox"].default
    mailer = Settings.model_fields["mailer"].default
    url = Settings.model_fields["database_url"].default
    assert f"SQLite at {url.removeprefix('sqlite:///')}," in EXAMPLE
    assert f"sandbox SMSC on {sandbox.host}:{sandbox.port} as" in EXAMPLE
    assert f"notices written to {mailer.maildir}/" in EXAMPLE


def test_the_two_copies_and_the_command_agree() -> None:
    assert (ROOT / "examples" / "bridge.toml").read_text(encoding="utf-8") == EXAMPLE
    result = CliRunner().invoke(app, ["config", "example"])
    assert result.exit_code == 0 and result.output == EXAMPLE
