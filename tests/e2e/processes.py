"""Helpers for tests that run `mailsms` as a user does: a separate process, real ports.

`served(...)` starts a command that runs the bridge (`mailsms serve`, `make run`), reads
its log until the SMTP listener and the sandbox SMSC say where they listen (port 0 in
the settings), and stops it with SIGTERM at the end, as Ctrl-C would.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_SMTP = re.compile(r"SMTP intake listening on [0-9.]+:([0-9]+)")
_SANDBOX = re.compile(r"sandbox SMSC listening on [0-9.]+:([0-9]+)")


def wait_until(predicate: Callable[[], T | None], within: float = 20.0, what: str = "") -> T:
    """Poll `predicate` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what or predicate}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Is process `pid` still there (a child of a stopped bridge must not be)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would put the checkout on sys.path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
        and not k.startswith("MAILSMS_")
    }
    env.update(extra)
    return env


@dataclass
class Served:
    """A running bridge process: its ports and what it logged so far."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    smtp_port: int = 0
    sandbox_port: int = 0

    def log(self) -> str:
        return "\n".join(self.lines)


def _read(served: Served) -> None:
    assert served.process.stdout is not None
    for line in served.process.stdout:
        served.lines.append(line.rstrip("\n"))


@contextmanager
def served(
    command: list[str], cwd: Path, env: Mapping[str, str], within: float = 60.0
) -> Iterator[Served]:
    """Run `command` (which starts the bridge) until the block ends; SIGTERM, then wait."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: make and the bridge stop together
    )
    run = Served(process)
    reader = threading.Thread(target=_read, args=(run,), daemon=True)
    reader.start()
    try:

        def ports() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the bridge exited ({process.returncode}):\n{run.log()}")
            text = run.log()
            smtp, sandbox = _SMTP.search(text), _SANDBOX.search(text)
            if smtp and sandbox:
                run.smtp_port, run.sandbox_port = int(smtp[1]), int(sandbox[1])
                return True
            return False

        wait_until(ports, within, "the bridge listens")
        yield run
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        reader.join(timeout=10)
