"""Real processes for the reliability tests: `mailsms serve`, a standalone SMSC, a load client.

Each runs as its own OS process on 127.0.0.1, so a test can SIGKILL the bridge the way a
power cut or the OOM killer would, while the client and the SMSC live on. Output of
every process goes to a log file in the test's directory. `running_instances` starts
several bridges on one shared database (PostgreSQL), each with its own SMTP port,
settings file, Maildir and log.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.peers.net import free_port

REPO = Path(__file__).resolve().parents[2]
MAILSMS = str(Path(sys.executable).parent / "mailsms")
HOST = "127.0.0.1"
DOMAIN = "eu.rsms.net"


@dataclass(frozen=True)
class Timing:
    """The bridge's times the reliability tests shorten: `[dispatch] lease`, the external
    SMSC's `response_timeout`, and `database_timeout` (None: the default)."""

    lease: float = 15.0  # the shortest for response_timeout 5 s (bridge.mt.settings)
    response_timeout: float = 5.0
    database_timeout: float | None = None


def bridge_config(
    workdir: Path,
    smtp_port: int,
    smsc: str,
    extra: str = "",
    database_url: str | None = None,
    timing: Timing = Timing(),
) -> Path:
    """A bridge.toml in `workdir`: SQLite (unless `database_url`) and Maildir there, SMTP on
    `smtp_port`.

    `smsc` is either "sandbox:<port>" (the built-in sandbox SMSC inside the bridge) or
    "external:<port>" (an SMSC process of its own, which outlives the bridge)."""
    database_url = database_url or f"sqlite:///{workdir / 'bridge.db'}"
    kind, _, port = smsc.partition(":")
    if kind == "sandbox":
        transport = f"""[sandbox]
enabled = true
host = "{HOST}"
port = {port}
receipt_delay = 0.05
inbox = "{workdir / "sandbox" / "inbox.jsonl"}"
"""
    else:
        transport = f"""[[smsc]]
name = "smsc"
host = "{HOST}"
port = {port}
system_id = "bridge"
password = "sandbox"
response_timeout = {timing.response_timeout}
long_code_rate = 0  # the load comes from one long-code sender; this test is about durability
reconnect_max = 0.5
bind_failure_min = 0.2

[[routes]]
prefix = ""
transports = ["smsc"]
"""
    path = workdir / "bridge.toml"
    top = "" if timing.database_timeout is None else f"database_timeout = {timing.database_timeout}"
    path.write_text(
        f"""database_url = "{database_url}"
{top}
demo = true
log_level = "INFO"

[smtp]
host = "{HOST}"
port = {smtp_port}
hostname = "reliability.localdomain"
domains = ["{DOMAIN}"]
max_connections_per_ip = 1000
max_connections_per_ip_per_minute = 100000

[mailer]
mode = "maildir"
maildir = "{workdir / "maildir"}"
poll_interval = 0.2

[dispatch]
poll_interval = 0.1
lease = {timing.lease}
retry_min = 0.5
retry_max = 2.0

{transport}
{extra}
""",
        encoding="utf-8",
    )
    return path


def until(predicate: Callable[[], Any], within: float, what: str, *procs: Proc) -> Any:
    """Poll `predicate` until it is truthy; fail after `within` s with the processes' logs."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}:\n{p.log_text()[-3000:]}" for p in procs)
            raise AssertionError(f"not within {within} s: {what}\n{logs}")
        time.sleep(0.05)


@dataclass
class Proc:
    """A child process with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def kill9(self) -> int:
        """SIGKILL, as a power cut or the OOM killer would; returns the exit status."""
        self.popen.send_signal(signal.SIGKILL)
        return self.popen.wait(10)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (a clean stop), then SIGKILL after `timeout`; returns the exit status."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait(10)


def spawn(
    name: str,
    cmd: list[str],
    log: Path,
    *,
    stdout_pipe: bool = False,
    env: dict[str, str] | None = None,
) -> Proc:
    out = open(log, "ab")  # noqa: SIM115  (the child keeps it; closed with the process)
    try:
        popen = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=subprocess.PIPE if stdout_pipe else out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                # this checkout's code, also for `mailsms` of a virtualenv installed from another
                "PYTHONPATH": os.pathsep.join(
                    filter(None, (str(REPO), os.environ.get("PYTHONPATH")))
                ),
                **(env or {}),
            },
        )
    finally:
        out.close()
    return Proc(name, popen, log)


def start_bridge(config: Path, log: Path, name: str = "bridge") -> Proc:
    """`mailsms serve`; its PostgreSQL sessions carry `name` as their application_name
    (libpq's PGAPPNAME), so a test can tell them apart in pg_stat_activity."""
    return spawn(name, [MAILSMS, "serve", "-c", str(config)], log, env={"PGAPPNAME": name})


def wait_smtp_ready(proc: Proc, port: int, within: float = 60.0) -> None:
    """Until the bridge greets with 220 on `port` (it migrates the database first)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not proc.alive():
            raise AssertionError(f"{proc.name} exited: {proc.log_text()[-2000:]}")
        try:
            with socket.create_connection((HOST, port), timeout=2) as c:
                banner = c.recv(512)
                c.sendall(b"QUIT\r\n")
            if banner.startswith(b"220"):
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{proc.name} did not greet on {port} within {within} s")


def start_smsc(inbox: Path, log: Path, *, spread: bool = False) -> tuple[Proc, int]:
    """The standalone SMSC process; returns it and the port it listens on.

    `spread`: deliver_sm go to another bind than the submitter's (`smsc_process --spread`)."""
    options = ["--spread"] if spread else []
    proc = spawn(
        "smsc",
        [sys.executable, "-m", "tests.reliability.smsc_process", str(inbox), *options],
        log,
        stdout_pipe=True,
    )
    assert proc.popen.stdout is not None
    line = proc.popen.stdout.readline().decode()
    if not line.startswith("listening "):
        raise AssertionError(f"SMSC did not start: {line!r} {proc.log_text()[-2000:]}")
    return proc, int(line.split()[1])


@dataclass
class Acks:
    """The client's record of acknowledged mails: number -> queued id (read as it grows)."""

    path: Path
    ids: dict[int, str] = field(default_factory=dict)
    refused: dict[int, str] = field(default_factory=dict)

    def read(self) -> int:
        try:
            data = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return 0
        for line in data.splitlines(keepends=True):
            if not line.endswith("\n"):
                break  # being written
            record = json.loads(line)
            if "id" in record:
                self.ids[int(record["i"])] = str(record["id"])
            else:
                self.refused[int(record["i"])] = str(record.get("reply"))
        return len(self.ids)


@dataclass(frozen=True)
class Instance:
    """One of several `mailsms serve` processes that share a database."""

    name: str
    workdir: Path  # its settings file, Maildir and log
    smtp_port: int
    config: Path
    proc: Proc


@contextmanager
def running_instances(
    root: Path,
    database_url: str,
    smsc: str | Sequence[str],
    count: int = 2,
    *,
    together: bool = False,
    extra: str = "",
    timing: Timing = Timing(),
) -> Iterator[list[Instance]]:
    """`count` bridges on `database_url`, each greeting on its own SMTP port; stopped
    (SIGTERM) at the end.

    `smsc` as in `bridge_config`, one for all or one per instance (give each its own
    "sandbox:<port>"). By default the bridges start one after the other, so the first
    migrates the database and creates the demo tenant; `together` starts them at once.
    The database must keep the bridge's durability rules (tests.peers.postgres.DURABLE)."""
    smscs = [smsc] * count if isinstance(smsc, str) else list(smsc)
    if len(smscs) != count:
        raise ValueError(f"{count} instances need {count} SMSC settings, got {len(smscs)}")
    instances: list[Instance] = []
    try:
        for i, transport in enumerate(smscs, 1):
            name = f"bridge-{i}"
            workdir = root / name
            workdir.mkdir(parents=True, exist_ok=True)
            port = free_port()
            config = bridge_config(
                workdir, port, transport, extra, database_url=database_url, timing=timing
            )
            proc = start_bridge(config, workdir / "bridge.log", name)
            instances.append(Instance(name, workdir, port, config, proc))
            if not together:
                wait_smtp_ready(proc, port)
        for instance in instances:
            wait_smtp_ready(instance.proc, instance.smtp_port)
        yield instances
    finally:
        for instance in instances:
            instance.proc.stop(10)


def start_load_client(
    tmp: Path,
    name: str,
    ports: Sequence[int],
    first: int,
    *,
    max_mails: int,
    duration: float = 150,
    give_up: float = 90,
) -> tuple[Proc, Acks]:
    """The load client (`tests.reliability.load_client`) as a process of its own, sending
    to `ports` (the first one first, the others as further MX hosts) with numbers from
    `first`, its acknowledgements in tmp/acks-NAME.jsonl; ended by `finish_load_client`."""
    acks = Acks(tmp / f"acks-{name}.jsonl")
    proc = spawn(
        name,
        [
            sys.executable, "-m", "tests.reliability.load_client",
            *(f"--port={p}" for p in ports),
            "--acks", str(acks.path), "--first", str(first), "--conc", "3",
            "--max-mails", str(max_mails), "--duration", f"{duration:g}",
            "--give-up", f"{give_up:g}", "--stop-file", str(tmp / f"stop-{name}"),
        ],
        tmp / f"{name}.log",
        stdout_pipe=True,
    )  # fmt: skip
    return proc, acks


def finish_load_client(tmp: Path, client: Proc, timeout: float = 120) -> dict[str, int]:
    """Tell the load client to stop; its summary (the last line it printed)."""
    (tmp / f"stop-{client.name}").touch()
    out, _ = client.popen.communicate(timeout=timeout)
    return dict(json.loads(out.decode().strip().splitlines()[-1]))
