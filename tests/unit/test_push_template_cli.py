"""`mailsms push-template` through the real command: set (TOML, JSON), show, preview, remove."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from bridge.cli import app
from tests.conftest import make_settings

TOML = """
format = "xml"

[status]
root = "orderStatus"
fields = [
  {field = "order_id", name = "id"},
  {field = "status"},
  {name = "system", value = "erp-7"},
]
"""


def _invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "-c", str(config)])


def _ok(config: Path, *args: str) -> str:
    result = _invoke(config, *args)
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def _refused(config: Path, *args: str) -> str:
    result = _invoke(config, *args)
    assert result.exit_code != 0, (args, result.output)
    assert "Traceback" not in result.output and not isinstance(result.exception, Exception)
    return result.output


def test_set_show_preview_remove(tmp_path: Path) -> None:
    make_settings(tmp_path)
    config = tmp_path / "bridge.toml"
    _ok(config, "db", "upgrade")
    _ok(config, "customer", "add", "acme")
    toml = tmp_path / "template.toml"
    toml.write_text(TOML, encoding="utf-8")

    tried = _ok(config, "push-template", "preview", "--file", str(toml))
    assert "<orderStatus><id>7QK3A1B2C3D4E.1</id><status>delivered</status>" in tried
    assert "<system>erp-7</system></orderStatus>" in tried
    assert "inbound push: today's body" in tried
    assert "no push template" in _ok(config, "push-template", "show", "--customer", "acme")

    out = _ok(config, "push-template", "set", "--customer", "acme", "--file", str(toml))
    assert "push template of acme set" in out
    shown = json.loads(_ok(config, "push-template", "show", "--customer", "acme"))
    assert shown["format"] == "xml" and shown["status"]["root"] == "orderStatus"
    assert shown["status"]["fields"][0] == {"field": "order_id", "name": "id"}
    assert "<id>7QK3A1B2C3D4E.1</id>" in _ok(
        config, "push-template", "preview", "--customer", "acme"
    )

    # The same template as JSON replaces it; an invalid one is refused with every fault.
    as_json = tmp_path / "template.json"
    as_json.write_text(json.dumps({**shown, "format": "kv"}), encoding="utf-8")
    _ok(config, "push-template", "set", "--customer", "acme", "--file", str(as_json))
    assert json.loads(_ok(config, "push-template", "show", "--customer", "acme"))["format"] == "kv"
    bad = tmp_path / "bad.toml"
    bad.write_text('format = "csv"\n[status]\nfields = [{field = "colour"}]\n', encoding="utf-8")
    out = _refused(config, "push-template", "set", "--customer", "acme", "--file", str(bad))
    assert "format: one of json, xml, kv" in out and "'colour' is not a default field" in out
    assert json.loads(_ok(config, "push-template", "show", "--customer", "acme"))["format"] == "kv"
    broken = tmp_path / "broken.toml"
    broken.write_text("format = ", encoding="utf-8")
    assert "not valid TOML" in _refused(config, "push-template", "preview", "--file", str(broken))
    odd = tmp_path / "odd.json"  # a Python parser's leniency: stored, it failed the commit
    odd.write_text(
        '{"format": "json", "status": {"fields": [{"name": "x\\ud800", "field": "status"}]}}'
    )
    refused = _refused(config, "push-template", "set", "--customer", "acme", "--file", str(odd))
    assert "an unpaired surrogate \\ud800" in refused and str(odd) in refused
    odd.write_text('{"format": NaN}')
    assert "NaN is not a JSON value" in _refused(
        config, "push-template", "preview", "--file", str(odd)
    )
    yaml = tmp_path / "t.yaml"
    yaml.write_text("format: json", encoding="utf-8")
    assert ".toml or .json" in _refused(config, "push-template", "preview", "--file", str(yaml))
    assert "no customer 'globex'" in _refused(
        config, "push-template", "set", "--customer", "globex", "--file", str(toml)
    )

    assert "removed" in _ok(config, "push-template", "remove", "--customer", "acme")
    assert "no push template" in _refused(config, "push-template", "remove", "--customer", "acme")
