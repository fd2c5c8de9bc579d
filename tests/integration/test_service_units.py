"""The shipped systemd units pass `systemd-analyze verify`, and the packaged settings are valid.

systemd-analyze checks unit files offline, without systemd running: with `--root` it
reads a root directory that holds the units as shipped, systemd's own units (targets
the units refer to) and every program an Exec line names, which it checks exists and
is executable (a stand-in script here: the bridge is not installed under /opt in the
test). It reports unknown keys and bad values as warnings but still exits 0, so any
output counts as a failure. `systemd-analyze security --offline` scores the sandboxing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BRIDGE_UNIT = ROOT / "examples" / "systemd" / "mailsms.service"
DIRSYNC_UNITS = ROOT / "examples" / "dirsync"
PACKAGED_SETTINGS = ROOT / "examples" / "systemd" / "bridge.toml"
DOCKERFILE = ROOT / "examples" / "docker" / "Dockerfile"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")
_EXEC = re.compile(r"^Exec[A-Za-z]*=[-@:+!]*(/\S+)", re.MULTILINE)
MAX_EXPOSURE = 2.0  # systemd-analyze's scale: 0 (locked down) .. 10 (unprotected)


def _analyze() -> str:
    found = shutil.which("systemd-analyze")
    assert found, "systemd-analyze is missing: `make test-deps` installs Debian's systemd"
    return found


def _root(tmp_path: Path, units: dict[str, str]) -> Path:
    """A root with systemd's units, `units` (name -> text) and stand-ins for their programs."""
    root = tmp_path / "root"
    shutil.copytree(SYSTEM_UNITS, root / SYSTEM_UNITS.relative_to("/"), symlinks=True)
    target = root / "etc" / "systemd" / "system"
    target.mkdir(parents=True)
    for name, text in units.items():
        (target / name).write_text(text, encoding="utf-8")
        for program in _EXEC.findall(text):
            stand_in = root / program.lstrip("/")
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
            stand_in.chmod(0o755)
    return root


def _verify(tmp_path: Path, units: dict[str, str], name: str) -> str:
    """systemd-analyze verify on `name`; its complaints ("" when the unit is clean)."""
    root = _root(tmp_path, units)
    done = subprocess.run(
        [_analyze(), "verify", f"--root={root}", f"/etc/systemd/system/{name}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return (
        f"exit {done.returncode}\n{done.stdout}{done.stderr}"
        if (done.returncode or done.stdout.strip() or done.stderr.strip())
        else ""
    )


def _dirsync_units() -> dict[str, str]:
    units = [*DIRSYNC_UNITS.glob("*.service"), *DIRSYNC_UNITS.glob("*.timer")]
    return {p.name: p.read_text(encoding="utf-8") for p in units}


def test_bridge_unit_verifies(tmp_path: Path) -> None:
    unit = BRIDGE_UNIT.read_text(encoding="utf-8")
    assert _verify(tmp_path, {"mailsms.service": unit}, "mailsms.service") == ""


def test_bridge_unit_is_started_once_healthz_answers_where_the_settings_listen() -> None:
    """Type=exec, then the health check on the address the packaged settings give [http]."""
    unit = BRIDGE_UNIT.read_text(encoding="utf-8")
    assert "\nType=exec\n" in unit
    [check] = re.findall(r"^ExecStartPost=(/usr/bin/curl .*)$", unit, re.MULTILINE)
    http = tomllib.loads(PACKAGED_SETTINGS.read_text(encoding="utf-8"))["http"]
    assert http["enabled"] is True
    assert check.endswith(f" http://{http['listen']}/healthz")
    assert "--fail" in check and "--retry" in check


@pytest.mark.parametrize("name", ["mailsms-dirsync.service", "mailsms-dirsync.timer"])
def test_dirsync_units_verify(tmp_path: Path, name: str) -> None:
    units = _dirsync_units()
    assert set(units) == {"mailsms-dirsync.service", "mailsms-dirsync.timer"}
    assert _verify(tmp_path, units, name) == ""


def test_verify_reports_a_broken_unit(tmp_path: Path) -> None:
    """The check itself can fail: a misspelt key and a bad value are reported."""
    unit = BRIDGE_UNIT.read_text(encoding="utf-8")
    broken = unit.replace("ProtectSystem=strict", "ProtectSysten=strict").replace(
        "RestrictAddressFamilies=AF_INET ", "RestrictAddressFamilies=AF_NOPE AF_INET "
    )
    complaints = _verify(tmp_path, {"mailsms.service": broken}, "mailsms.service")
    assert "ProtectSysten" in complaints and "AF_NOPE" in complaints


def test_units_share_one_install(tmp_path: Path) -> None:
    """The bridge, dirsync and the container use the same program, settings and state paths."""
    bridge = BRIDGE_UNIT.read_text(encoding="utf-8")
    dirsync = (DIRSYNC_UNITS / "mailsms-dirsync.service").read_text(encoding="utf-8")
    docker = DOCKERFILE.read_text(encoding="utf-8")
    program = "/opt/mailsms/.venv/bin/mailsms"
    assert f"ExecStart={program} serve" in bridge
    assert f"ExecStart={program} dirsync" in dirsync
    for unit in (bridge, dirsync):
        assert "WorkingDirectory=/var/lib/mailsms\n" in unit
        assert "StateDirectory=mailsms\n" in unit and "User=mailsms\n" in unit
    assert "Environment=MAILSMS_CONFIG=/etc/mailsms/bridge.toml" in bridge
    assert "MAILSMS_CONFIG=/etc/mailsms/bridge.toml" in docker
    assert "python -m venv /opt/mailsms/.venv" in docker
    healthcheck = re.search(r"^HEALTHCHECK .*\n\s+CMD .*(http://[0-9.:]+/healthz)", docker, re.M)
    assert healthcheck is not None and healthcheck[1] == "http://127.0.0.1:8025/healthz"
    copy = r"^COPY .*examples/systemd/bridge.toml /etc/mailsms/bridge.toml$"
    assert re.search(copy, docker, re.MULTILINE)


@pytest.mark.parametrize(
    "unit", [BRIDGE_UNIT, DIRSYNC_UNITS / "mailsms-dirsync.service"], ids=lambda p: p.name
)
def test_service_sandboxing_scores_low_exposure(tmp_path: Path, unit: Path) -> None:
    root = _root(tmp_path, {unit.name: unit.read_text(encoding="utf-8")})
    done = subprocess.run(
        [
            _analyze(),
            "security",
            "--offline=true",
            f"--root={root}",
            f"--threshold={int(MAX_EXPOSURE * 10)}",
            f"/etc/systemd/system/{unit.name}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    overall = re.search(rf"Overall exposure level for {unit.name}: ([0-9.]+)", done.stdout)
    assert overall is not None, done.stdout + done.stderr
    assert done.returncode == 0 and float(overall.group(1)) <= MAX_EXPOSURE, done.stdout


def test_packaged_settings_are_valid_and_keep_state_in_var_lib(tmp_path: Path) -> None:
    mailsms = str(Path(sys.executable).parent / "mailsms")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILSMS_")} | {
        "MAILSMS_SMSC_PASSWORD": "from-the-environment-file"
    }
    done = subprocess.run(
        [mailsms, "config", "check", "-c", str(PACKAGED_SETTINGS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    settings = json.loads(done.stdout)
    assert settings["database_url"] == "sqlite:////var/lib/mailsms/bridge.db"
    assert settings["demo"] is False and settings["sandbox"]["enabled"] is False
    paths = [
        settings["mailer"]["maildir"],
        settings["sandbox"]["inbox"],
        settings["sandbox"]["rules_file"],
    ]
    assert all(p.startswith("/var/lib/mailsms/") for p in paths), paths
    assert [s["name"] for s in settings["smsc"]] == ["operator-a"]
    assert settings["http"]["enabled"] is True
    assert list(tmp_path.iterdir()) == []  # checking wrote nothing
