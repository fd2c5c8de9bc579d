"""The servers under test, and starting, waiting for and stopping them as processes.

Run as a script, this is server (a): a bare aiosmtpd whose handler only returns 250,
on the event loop's own `create_server` (as the bridge does), `server_hostname` set.
It stops on SIGTERM/SIGINT, or by itself after --lifetime seconds.

  python bench/servers.py --port 30025

Server (b) is the bridge: `bridge_config()` writes its settings file into a temp dir
(SQLite, sandbox SMSC, maildir there) and `start()` runs `mailsms serve -c` on it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
HOSTNAME = "bench.localdomain"
DOMAIN = "eu.rsms.net"
# The load goes to numbers in sequence, which the SMS-pumping check holds at its defaults
# (more than 25 distinct numbers under one prefix: the number without its last 3 digits).
# Benchmarks keep the limit and shorten the suffix to 1 digit: at most 10 numbers share a
# prefix, so nothing is held, while the check counts and records every number as it does
# for a customer on the defaults (`velocity_numbers = 0` would skip that work; a limit no
# run reaches would count a thousand numbers per prefix, more than any default customer).
VELOCITY_SUFFIX_DIGITS = "1"


class Bare:
    """aiosmtpd handler: accept everything, store nothing (count sessions and mails)."""

    def __init__(self) -> None:
        self.sessions = 0
        self.mails = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails += 1
        return "250 2.0.0 Ok"


def _starttls_context() -> ssl.SSLContext:
    """A certificate for 127.0.0.1 from a throwaway CA (trustme, a test dependency)."""
    import trustme

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert(HOST).configure_cert(context)
    return context


async def serve_bare(port: int, lifetime: float, starttls: bool = False) -> None:
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    handler = Bare()
    tls = _starttls_context() if starttls else None

    def session() -> SMTP:
        handler.sessions += 1  # connections, the readiness probe's included
        return SMTP(
            handler, hostname=HOSTNAME, ident="bare ESMTP", decode_data=False, tls_context=tls
        )

    server = await loop.create_server(session, host=HOST, port=port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), lifetime)
    server.close()
    print(f"bare: {handler.sessions} sessions, {handler.mails} mails", flush=True)


# --- processes -----------------------------------------------------------------------


def free_port() -> int:
    """A port on 127.0.0.1 that is free right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def pinned(cmd: list[str], cpu: int | str | None) -> list[str]:
    """`cmd` under `taskset -c cpu` when taskset exists and a CPU (or list: "0,1") is given."""
    if cpu is None or shutil.which("taskset") is None:
        return cmd
    return ["taskset", "-c", str(cpu), *cmd]


@dataclass
class Server:
    """A server process under test (taskset execs, so the PID is the server's)."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def cpu_seconds(self) -> float:
        """User + system CPU of the process (all threads) so far, from /proc."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def pause(self) -> None:
        """SIGSTOP: an idle bridge still dispatches its backlog; keep it off the CPU."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def log_tail(self, chars: int = 600) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def start(
    name: str,
    cmd: list[str],
    port: int,
    workdir: Path,
    cpu: int | str | None,
    env: dict[str, str] | None = None,
) -> Server:
    log = workdir / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            pinned(cmd, cpu),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=None if env is None else {**os.environ, **env},
        )
    return Server(name=name, port=port, proc=proc, log=log)


def wait_ready(server: Server, timeout: float = 30.0) -> None:
    """Poll the port until the server greets with 220 (deadline `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.proc.returncode}: {server.log_tail()}"
            )
        try:
            with socket.create_connection((HOST, server.port), timeout=2) as c:
                banner = c.recv(512)
                c.sendall(b"QUIT\r\n")
                c.recv(512)
            if banner.startswith(b"220"):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not answer on port {server.port} in {timeout:.0f} s")


def stop(server: Server, timeout: float = 20.0) -> int | None:
    """SIGCONT + SIGTERM, wait, then SIGKILL; returns the exit code."""
    if server.proc.poll() is None:
        server.resume()
        server.proc.terminate()
        try:
            server.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(5)
    return server.proc.returncode


# --- the bridge ----------------------------------------------------------------------


# Per-client limits lifted for the benchmark (one client IP opens C connections and, in
# permsg mode, hundreds per second); only the keys the installed bridge knows are written.
BENCH_SMTP_LIMITS = {
    "max_connections": 10_000,
    "max_connections_per_ip": 10_000,
    "max_connections_per_ip_per_minute": 10_000_000,
}


# A reused connection sends more than the bridge's default 100 MAILs per session when
# the bridge is fast (reuse C=8: ~190 per run); NOOP and RSET keep their limits.
BENCH_CALL_LIMIT = '{ NOOP = 20, RSET = 20, "*" = 10000000 }'


@functools.cache
def _known_keys(code: str | None) -> tuple[frozenset[str], frozenset[str]]:
    """The keys of the [smtp] and [server] sections that the bridge at `code` (or this
    checkout) accepts: read by that code itself, in a subprocess (once per checkout)."""
    ask = (
        "from bridge.settings import Settings; "
        "f = Settings.model_fields; "
        "print(' '.join(f['smtp'].annotation.model_fields)); "
        "print(' '.join(f['server'].annotation.model_fields) if 'server' in f else '')"
    )
    env = {**os.environ, "PYTHONPATH": code} if code else None
    found = subprocess.run(  # in `code`: `-c` puts the working directory first on the path
        [sys.executable, "-c", ask], capture_output=True, text=True, env=env, cwd=code, check=False
    )
    if found.returncode != 0:
        return frozenset(), frozenset()
    smtp, _, server = found.stdout.partition("\n")
    return frozenset(smtp.split()), frozenset(server.split())


def smtp_limits(code: str | None = None, flat_out: bool = False) -> dict[str, int | str]:
    """The entries of BENCH_SMTP_LIMITS that the [smtp] settings of the bridge that will
    run (this checkout, or the one at `code`, e.g. a baseline) accept.

    `flat_out`: no flow control (`in_flow_delay = 0`) either, where the code has it in
    [smtp] (an older layout; see `flow_off`). The intake benchmark measures what the
    intake takes when the CPU is all its own; the flow control, which slows the intake
    while the process is saturated so that the drain keeps its share, belongs to the
    end-to-end benchmark, which runs with the bridge's defaults."""
    known, _ = _known_keys(code)
    limits: dict[str, int | str] = {k: v for k, v in BENCH_SMTP_LIMITS.items() if k in known}
    if "command_call_limit" in known:
        limits["command_call_limit"] = BENCH_CALL_LIMIT
    if flat_out and "in_flow_delay" in known:
        limits["in_flow_delay"] = 0
    return limits


def flow_off(code: str | None = None) -> str:
    """`in_flow_delay = 0` for the [server] section, where the code has it there, else ""."""
    _, known = _known_keys(code)
    return "in_flow_delay = 0\n" if "in_flow_delay" in known else ""


def bridge_config(
    workdir: Path,
    smtp_port: int,
    sandbox_port: int,
    receipt: str,
    event_loop: str = "asyncio",
    code: str | None = None,
) -> Path:
    """Write a bridge.toml for the intake benchmark into `workdir` and return its path
    (`code`: the checkout that will run it, when not this one)."""
    path = workdir / "bridge.toml"
    limits = "".join(f"{k} = {v}\n" for k, v in smtp_limits(code, flat_out=True).items())
    path.write_text(
        f"""# written by bench/servers.py
database_url = "sqlite:///{workdir / "bridge.db"}"
demo = true
log_level = "WARNING"

[server]
event_loop = "{event_loop}"
{flow_off(code)}
[smtp]
host = "{HOST}"
port = {smtp_port}
hostname = "{HOSTNAME}"
domains = ["{DOMAIN}"]
{limits}
[sandbox]
enabled = true
host = "{HOST}"
port = {sandbox_port}
receipt = "{receipt}"
inbox = "{workdir / "sandbox" / "inbox.jsonl"}"

[mailer]
mode = "maildir"
maildir = "{workdir / "maildir"}"
"""
    )
    return path


def smsc_config(workdir: Path) -> Path:
    """Settings for `mailsms sandbox serve`: the end-to-end benchmark's SMSC, receipts on."""
    path = workdir / "smsc.toml"
    path.write_text(
        f"""# written by bench/servers.py
[sandbox]
enabled = true
system_id = "bench"
password = "bench"
receipt = "delivered"
receipt_delay = 0.05
inbox = "{workdir / "phones.jsonl"}"
"""
    )
    return path


def e2e_config(
    workdir: Path,
    smtp_port: int,
    smsc_port: int,
    database_url: str,
    processes: int = 1,
    event_loop: str = "asyncio",
    first_process_smtp: str = "auto",
    code: str | None = None,
    relay_port: int | None = None,
    http_port: int | None = None,
) -> Path:
    """A bridge.toml bound to the standalone SMSC (no sandbox inside the bridge). The event
    loop is always named, so that a baseline checkout runs on the one asked for. Notices go
    into a Maildir, or with `relay_port` over SMTP to a relay there (no TLS). With
    `http_port`, the HTTP listener there (its /metrics: the group commits' counters)."""
    path = workdir / "bridge.toml"
    limits = "".join(f"{k} = {v}\n" for k, v in smtp_limits(code).items())
    server = f'[server]\nprocesses = {processes}\nevent_loop = "{event_loop}"\n'
    if first_process_smtp != "auto":
        server += f'first_process_smtp = "{first_process_smtp}"\n'
    mailer = f'[mailer]\nmode = "maildir"\nmaildir = "{workdir / "maildir"}"\n'
    if relay_port is not None:
        mailer = f'[mailer]\nmode = "smtp"\nrelay_host = "{HOST}"\nrelay_port = {relay_port}\n'
        mailer += 'tls = "none"\n'
    http = ""
    if http_port is not None:
        http = f'\n[http]\nenabled = true\nlisten = "{HOST}:{http_port}"\n'
    path.write_text(
        f"""# written by bench/servers.py
database_url = "{database_url}"
demo = true
log_level = "WARNING"
{server}
[smtp]
host = "{HOST}"
port = {smtp_port}
hostname = "{HOSTNAME}"
domains = ["{DOMAIN}"]
{limits}
[sandbox]
enabled = false

[[smsc]]
name = "smsc"
host = "{HOST}"
port = {smsc_port}
system_id = "bench"
password = "bench"
long_code_rate = 0.0

[[routes]]
prefix = ""
transports = ["smsc"]

{mailer}{http}"""
    )
    return path


@dataclass
class Pair:
    """A bridge bound to a standalone SMSC, each in a process of its own (`bridge_and_smsc`)."""

    bridge: Server
    smsc: Server
    config: Path  # the bridge's settings
    db: Path  # its SQLite database
    smsc_port: int
    env: dict[str, str] | None  # PYTHONPATH for another commit's code, else None

    def cli(self, *args: str) -> str:
        """`mailsms <args> -c <the bridge's settings>` with the bridge's code; its stdout."""
        mailsms = str(Path(sys.executable).with_name("mailsms"))
        done = subprocess.run(
            [mailsms, *args, "-c", str(self.config)],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
            env=None if self.env is None else {**os.environ, **self.env},
        )
        return done.stdout


@contextlib.contextmanager
def bridge_and_smsc(
    workdir: Path,
    code: str | None,
    *,
    profile: Path | None = None,
    http_port: int | None = None,
    bridge_cpu: int = 1,
) -> Iterator[Pair]:
    """`mailsms sandbox serve` on CPU 0 and `mailsms serve` (SQLite in `workdir`, bound to
    it: `e2e_config`) on `bridge_cpu`, the bridge's code from `code` (else this
    checkout), under `profile_bridge.py` into `profile` when given; ready when yielded,
    both stopped afterwards."""
    mailsms = str(Path(sys.executable).with_name("mailsms"))
    smsc_port, smtp_port = free_port(), free_port()
    smsc_cmd = [mailsms, "sandbox", "serve", "-c", str(smsc_config(workdir))]
    db = workdir / "bridge.db"
    cfg = e2e_config(
        workdir, smtp_port, smsc_port, f"sqlite:///{db}", code=code, http_port=http_port
    )
    env = None if code is None else {"PYTHONPATH": code}
    cmd = [mailsms, "serve", "-c", str(cfg)]
    if profile is not None:  # cProfile in every thread
        here = Path(__file__).resolve().parent
        cmd = [sys.executable, str(here / "profile_bridge.py"), str(profile), *cmd[1:]]
    smsc = start("smsc", [*smsc_cmd, "--port", str(smsc_port)], smsc_port, workdir, 0)
    try:
        bridge = start("bridge", cmd, smtp_port, workdir, bridge_cpu, env)
        try:
            wait_ready(bridge, timeout=60)
            yield Pair(bridge, smsc, cfg, db, smsc_port, env)
        finally:
            stop(bridge, timeout=60)
    finally:
        stop(smsc)


def main() -> None:
    p = argparse.ArgumentParser(description="A bare aiosmtpd server that answers 250 to all.")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--lifetime", type=float, default=900.0, help="exit after this many seconds")
    p.add_argument(
        "--loop", default="asyncio", choices=["asyncio", "uvloop"], help="its event loop"
    )
    p.add_argument("--starttls", action="store_true", help="offer STARTTLS (a throwaway CA)")
    a = p.parse_args()
    if a.loop == "uvloop":
        import uvloop

        uvloop.run(serve_bare(a.port, a.lifetime, a.starttls))
    else:
        asyncio.run(serve_bare(a.port, a.lifetime, a.starttls))


if __name__ == "__main__":
    main()
