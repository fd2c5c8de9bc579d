"""The SAP guide as written: its admin commands run verbatim, and its sample dialogue is the
one `replay.py` plays, with ORCPT in RFC 3461 xtext as the bridge decodes it."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bridge.db.engine import open_engine
from bridge.db.store import run_sync
from bridge.notices.xtext import xtext_decode, xtext_encode
from bridge.tenants.admin import list_customers, list_users
from bridge.tenants.logins import list_credentials
from tests.e2e.processes import clean_env

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sap_bc_smtp"
RCPT = "SMS=+491701234567@eu.rsms.net"


def _replay() -> Any:
    spec = importlib.util.spec_from_file_location("sap_replay_guide", EXAMPLE / "replay.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_sample_dialogue_encodes_orcpt_as_replay_and_the_bridge_do() -> None:
    replay = _replay()
    session = (EXAMPLE / "samples" / "session.txt").read_text(encoding="utf-8")
    (rcpt_line,) = re.findall(r"^C: (RCPT TO:.*)$", session, flags=re.M)
    assert rcpt_line == f"RCPT TO:<{RCPT}> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;{replay.xtext(RCPT)}"
    orcpt = rcpt_line.split("ORCPT=rfc822;", 1)[1]
    assert orcpt == xtext_encode(RCPT) == "SMS+3D+2B491701234567@eu.rsms.net"
    assert xtext_decode(orcpt) == RCPT


def test_guide_admin_commands_run_as_written(tmp_path: Path) -> None:
    """The guide's block, run in a checkout-like folder after the bridge created its database."""
    guide = (EXAMPLE / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```sh\n(.*?)```", guide, flags=re.S) if "login add" in b]
    assert all(
        line.startswith(("export MAILSMS_CONFIG=examples/sap_bc_smtp/bridge.toml", ".venv/bin/"))
        for line in block.splitlines()
    ), block
    shutil.copytree(EXAMPLE, tmp_path / "examples" / "sap_bc_smtp")
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    env = clean_env()
    config = "examples/sap_bc_smtp/bridge.toml"
    mailsms = str(tmp_path / ".venv" / "bin" / "mailsms")

    def run(*args: str, script: str | None = None, stdin: str = "") -> str:
        done = subprocess.run(
            ["bash", "-e", "-c", script] if script else [mailsms, *args],
            cwd=tmp_path,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{args or script}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    # Before the bridge ran, the commands say where the database is missing.
    refused = subprocess.run(
        [mailsms, "customer", "list", "-c", config], cwd=tmp_path, env=env, capture_output=True
    )
    assert refused.returncode == 1 and b"no database at" in refused.stderr
    run("db", "upgrade", "-c", config)  # what `make run CONFIG=…` does first
    run(script=block, stdin="a-long-scot-password\na-long-scot-password\n")
    engine = open_engine(f"sqlite:///{tmp_path / 'var' / 'sap-example' / 'bridge.db'}")
    try:
        assert "sap-prd" in [c.name for c in run_sync(engine, list_customers)]
        assert [u.address for u in run_sync(engine, list_users, "sap-prd")] == [
            "jdoe@sap-prd.example.com"
        ]
        assert [c.username for c in run_sync(engine, list_credentials)] == ["sap-prd-scot"]
    finally:
        engine.dispose()
