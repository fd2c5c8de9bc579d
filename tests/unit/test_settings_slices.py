"""Each domain reads its own settings table; only the composition sees the whole `Settings`."""

from __future__ import annotations

import ast
from pathlib import Path

from bridge.settings import Settings
from bridge.transports.settings import SmscSettings
from bridge.transports.smpp_config import SmppConfig

BRIDGE = Path(__file__).resolve().parents[2] / "bridge"
COMPOSITION = {"cli"}  # the command package builds the app from the whole configuration


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_domain_imports_the_whole_settings() -> None:
    offenders = [
        str(path.relative_to(BRIDGE))
        for package in BRIDGE.iterdir()
        if package.is_dir() and package.name not in COMPOSITION
        for path in package.rglob("*.py")
        if "bridge.settings" in _imports(path)
    ]
    assert offenders == []


def test_the_smsc_table_is_declared_once() -> None:
    """The transport's config is the [[smsc]] table plus timings the file does not set."""
    assert Settings.model_fields["smsc"].annotation == tuple[SmscSettings, ...]
    assert issubclass(SmppConfig, SmscSettings)
    extra = set(SmppConfig.model_fields) - set(SmscSettings.model_fields)
    assert extra == {"enquire_link_timeout", "connect_timeout", "reconnect_min", "bind_wait"}
