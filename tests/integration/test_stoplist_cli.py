"""`mailsms stoplist add|remove|list`: every spelling of a number is one stop-list entry."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from bridge.cli import app
from bridge.db.engine import open_engine, upgrade
from bridge.db.store import run_sync
from bridge.tenants.admin import ensure_demo


def _run(config: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, [*args, "-c", str(config)])
    assert result.exit_code == code, result.output
    return result.output


def test_stoplist_add_in_any_spelling_is_one_e164_entry(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path / "bridge.db"}"\n[sandbox]\nenabled = true\n',
        encoding="utf-8",
    )
    engine = open_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    upgrade(engine)
    run_sync(engine, ensure_demo)
    engine.dispose()
    assert "added" in _run(config, "stoplist", "add", "0170 1234567", "--customer", "demo")
    again = _run(config, "stoplist", "add", "00491701234567", "--customer", "demo")
    assert "already on the stop list" in again
    listed = _run(config, "stoplist", "list")
    assert listed.split()[0] == "+491701234567" and len(listed.splitlines()) == 1
    assert "not a phone number" in _run(
        config, "stoplist", "add", "hello", "--customer", "demo", code=1
    )
    assert "1 entry removed" in _run(
        config, "stoplist", "remove", "491701234567", "--customer", "demo"
    )
