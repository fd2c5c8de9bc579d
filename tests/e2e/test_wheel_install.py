"""A wheel install works: built with `pip wheel`, installed in a fresh venv outside the checkout.

The fresh venv gets the wheel and nothing of the checkout: the test runs from a temporary
directory with PYTHONPATH unset and checks that `bridge` is imported from the new venv.
Its dependencies are the ones the wheel declares (Requires-Dist, followed transitively),
taken from this venv's installed distributions by linking them into a folder the fresh
venv reads (no download); an import the wheel does not declare fails there.
Then `mailsms serve` runs from that directory with a small settings file, a mail goes in
through a real SMTP client, the SMS reaches the sandbox and the status mail the Maildir.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import os
import shutil
import smtplib
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from email.message import EmailMessage
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from bridge.sandbox.smsc import read_inbox
from tests.e2e.processes import clean_env, served, wait_until

ROOT = Path(__file__).resolve().parents[2]
JUNK = shutil.ignore_patterns(
    ".git", ".venv", ".venv-*", "venv", "build", "dist", "var", "*.egg-info", "__pycache__",
    ".*_cache", ".hypothesis", "results", "node_modules",
)  # fmt: skip


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _closure(requires: list[str]) -> list[metadata.Distribution]:
    """The installed distributions these requirements need, transitively (no extras of ours)."""
    found: dict[str, metadata.Distribution] = {}
    todo = [(Requirement(r), "") for r in requires]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        dist = metadata.distribution(req.name)
        assert dist.version in req.specifier or not req.specifier, (req, dist.version)
        key = dist.metadata["Name"].lower()
        wanted = [(Requirement(r), e) for r in dist.requires or [] for e in ("", *req.extras)]
        if key not in found:
            found[key] = dist
            todo.extend(wanted)
        elif req.extras:
            todo.extend(wanted)
    return list(found.values())


def _link_dependencies(requires: list[str], into: Path) -> None:
    """Link the top-level modules and metadata of every needed distribution into `into`."""
    into.mkdir()
    for dist in _closure(requires):
        site = Path(str(dist.locate_file("")))
        assert dist.files is not None, f"{dist.metadata['Name']} has no RECORD"
        tops = {f.parts[0] for f in dist.files if f.parts[0] not in ("..", "__pycache__")}
        for top in tops:
            if (site / top).exists() and not (into / top).exists():
                (into / top).symlink_to(site / top)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip wheel --no-deps` builds from a copy of the checkout (no stale build/)."""
    work = tmp_path_factory.mktemp("wheel")
    shutil.copytree(ROOT, work / "src", ignore=JUNK, symlinks=True)
    dist = work / "dist"
    _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, work / "src", cwd=work
    )
    (built,) = (work / "dist").glob("mailsms-*.whl")
    return built


def test_the_wheel_holds_every_runtime_file(wheel: Path) -> None:
    """Every file of the packages (templates through the bridge/templates link) is in it."""
    names = set(zipfile.ZipFile(wheel).namelist())
    files = {
        (Path(folder) / name).relative_to(ROOT).as_posix()
        for package in ("bridge", "dirsync")
        for folder, dirs, found in os.walk(ROOT / package, followlinks=True)
        if "__pycache__" not in Path(folder).parts
        for name in found
        if not name.endswith((".pyc", ".pyo"))
    }
    templates = {
        "bridge/templates/" + p.relative_to(ROOT / "templates").as_posix()
        for p in (ROOT / "templates").rglob("*")
        if p.is_file()
    }
    assert len(templates) > 20 and templates <= files
    assert {"bridge/example.toml", "bridge/db/migrations/env.py"} <= files
    assert files - names == set()
    assert not any(n.startswith(("tests/", "templates/", "examples/")) for n in names)


def test_wheel_in_a_fresh_venv_serves_a_round_trip(wheel: Path, tmp_path: Path) -> None:
    venv, run = tmp_path / "venv", tmp_path / "run"
    run.mkdir()
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    fresh_site = Path(_run(python, "-c", purelib, cwd=run).strip())
    dist_info = "mailsms-" + wheel.name.split("-")[1] + ".dist-info/METADATA"
    declared = email.message_from_bytes(zipfile.ZipFile(wheel).read(dist_info))
    _link_dependencies(declared.get_all("Requires-Dist") or [], tmp_path / "deps")
    (fresh_site / "mailsms-test-deps.pth").write_text(f"{tmp_path / 'deps'}\n", encoding="utf-8")
    env = clean_env()
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    _run(*pip, "install", "--isolated", "--no-index", "--no-deps", "-q", wheel, cwd=run, env=env)
    assert "No broken requirements" in _run(*pip, "check", cwd=run, env=env)

    imported = "import bridge, dirsync; print(bridge.__file__, dirsync.__file__)"
    where = _run(python, "-c", imported, cwd=run, env=env)
    assert all(Path(p).is_relative_to(venv) for p in where.split()), where
    assert str(ROOT) not in where and sysconfig.get_paths()["purelib"] not in where

    mailsms = venv / "bin" / "mailsms"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert _run(mailsms, "--version", cwd=run, env=env).strip() == f"mailsms {project['version']}"
    example = (ROOT / "bridge" / "example.toml").read_text(encoding="utf-8")
    assert _run(mailsms, "config", "example", cwd=run, env=env) == example

    (run / "bridge.toml").write_text(
        "demo = true\n[smtp]\nport = 0\n[sandbox]\nenabled = true\nport = 0\n"
        "[mailer]\npoll_interval = 0.2\n[dispatch]\npoll_interval = 0.2\n",
        encoding="utf-8",
    )
    with served([str(mailsms), "serve", "-c", "bridge.toml"], run, env) as bridge:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "demo@example.com", "x", "wheel"
        msg.set_content("Installed from a wheel")
        with smtplib.SMTP("127.0.0.1", bridge.smtp_port, timeout=30) as smtp:
            refused = smtp.send_message(msg, to_addrs=["+491701234567@eu.rsms.net"])
        assert refused == {}
        inbox = run / "var" / "sandbox" / "inbox.jsonl"
        sms = wait_until(lambda: read_inbox(inbox), what="the SMS at the sandbox")
        assert (sms[0].destination, sms[0].text) == ("+491701234567", "Installed from a wheel")

        def status_mail() -> list[email.message.Message]:
            new = run / "var" / "maildir" / "new"
            files = sorted(new.iterdir()) if new.is_dir() else []
            mails = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                     for p in files]  # fmt: skip
            return [m for m in mails if str(m["Subject"]).startswith("SMS delivered")]

        (mail,) = wait_until(status_mail, what="the status mail in the Maildir")
        assert email.utils.parseaddr(str(mail["To"]))[1] == "demo@example.com"
        assert "+491701234567" in str(mail["Subject"])
        orders = _run(mailsms, "orders", cwd=run, env=env)
        assert "delivered" in orders
    assert bridge.process.returncode == 0, bridge.log()
    for bad in ("Traceback", "ERROR", "TemplateNotFound"):
        assert bad not in bridge.log(), bridge.log()
