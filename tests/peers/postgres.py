"""Throwaway PostgreSQL servers for the tests: one server, or a primary with a standby.

Each server has its own data directory and port on 127.0.0.1 and is stopped by pg_ctl.
`throwaway_postgres` is one empty database; `replicated_postgres` is a primary and a
streaming-replication standby made by `pg_basebackup`, with what a failover test needs:
wait for replay, stop or kill the primary, promote the standby, and the multi-host URLs
that reach whichever server takes writes (libpq's `target_session_attrs=read-write`).

PostgreSQL refuses to run as root, so under root the servers run as the `postgres`
system user that Debian's package creates (installed by `make test` when missing).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg

from tests.peers.net import free_port

HOST = "127.0.0.1"
USER = "mailsms"
DATABASE = "mailsms"


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise RuntimeError(
            f"PostgreSQL's {name} not found; run `make test` (it installs Debian's postgresql)"
        )
    return candidates[-1]


def _as_user() -> list[str]:
    """The command prefix that runs a PostgreSQL program as `postgres` when we are root."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*_as_user(), *args], check=check, capture_output=True, timeout=120)


def _until(predicate: Callable[[], Any], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"PostgreSQL: not within {within} s: {what}")
        time.sleep(0.05)


# Fast and unsafe: a throwaway server needs no crash safety (the bridge itself refuses it).
FAST = {"fsync": "off"}
# PostgreSQL's own defaults, which `mailsms serve` requires (fsync=on, synchronous_commit=on).
DURABLE: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class PgServer:
    """One server: its data directory (inside `base`), its port on 127.0.0.1, its log."""

    base: Path
    name: str
    port: int

    @property
    def data(self) -> Path:
        return self.base / self.name

    @property
    def log(self) -> Path:
        return self.base / f"{self.name}.log"

    def url(self, database: str = DATABASE) -> str:
        """The SQLAlchemy URL (the form the bridge's `database_url` takes)."""
        return f"postgresql+psycopg://{USER}@{HOST}:{self.port}/{database}"

    def conninfo(self, database: str = DATABASE) -> str:
        """The libpq URL (what psycopg.connect takes)."""
        return f"postgresql://{USER}@{HOST}:{self.port}/{database}"

    def start(self, settings: Mapping[str, str]) -> None:
        options = [
            f"-c listen_addresses={HOST}",
            f"-c port={self.port}",
            f"-c unix_socket_directories={self.base}",
            *(f"-c {name}={shlex.quote(value)}" for name, value in settings.items()),
        ]
        _run(
            _bin("pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.log),
            "start",
            "-o",
            " ".join(options),
        )

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """A clean (`fast`) or crash-like (`immediate`) shutdown by pg_ctl."""
        _run(_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def kill(self) -> None:
        """SIGKILL the postmaster and every process of the server at once, as a power cut
        would (each backend is a process group of its own: the postmaster's group is not
        the server; a backend left running would finish a commit in flight)."""
        pid = self.postmaster_pid()
        if pid is None:
            raise AssertionError(f"PostgreSQL {self.name} is not running")
        os.kill(pid, signal.SIGSTOP)  # no new backend between the list and the kill
        for process in [*_children(pid), pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process, signal.SIGKILL)
        _until(lambda: not self.accepting(), 30, f"{self.name} gone after SIGKILL")

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The whole server stopped (SIGSTOP to the postmaster, then to each of its
        processes: each backend is a process group of its own) for the block, then
        resumed: a frozen host or a stalled disk as its clients see it — their
        connections stay open, the kernel acknowledges what they send and answers their
        keepalives, and no answer comes."""
        pid = self.postmaster_pid()
        if pid is None:
            raise AssertionError(f"PostgreSQL {self.name} is not running")
        os.kill(pid, signal.SIGSTOP)  # first: a stopped postmaster starts no new backend
        children = _children(pid)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGSTOP)
        try:
            yield
        finally:
            for child in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGCONT)
            os.kill(pid, signal.SIGCONT)

    def postmaster_pid(self) -> int | None:
        try:
            first = (self.data / "postmaster.pid").read_text().splitlines()[0]
        except (OSError, IndexError):
            return None
        return int(first)

    def accepting(self) -> bool:
        """Whether something accepts TCP connections on the server's port."""
        try:
            with socket.create_connection((HOST, self.port), timeout=1):
                return True
        except OSError:
            return False

    def query(self, sql: str, database: str = DATABASE) -> Any:
        """Run `sql` on this server (autocommit); the first column of its first row, if any."""
        with psycopg.connect(self.conninfo(database), autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(sql.encode())
            row = cursor.fetchone() if cursor.description is not None else None
        return None if row is None else row[0]

    def in_recovery(self) -> bool:
        """True on a standby (read-only, replaying), False on a primary."""
        return bool(self.query("SELECT pg_is_in_recovery()"))


def _children(pid: int) -> list[int]:
    """The processes `pid` started (Linux: /proc/PID/task/*/children)."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in children.read_text().split()]
    return found


def _initdb(server: PgServer) -> None:
    _run(
        _bin("initdb"),
        "-D",
        str(server.data),
        "-U",
        USER,
        "-A",
        "trust",  # also lets 127.0.0.1 connect for replication (initdb's pg_hba.conf)
        "--no-sync",
        "-E",
        "UTF8",
    )


@contextmanager
def _workdir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="mailsms-pg-"))
    if _as_user():
        shutil.chown(base, "postgres")
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def throwaway_postgres(settings: Mapping[str, str] = FAST) -> Iterator[str]:
    """Yield a SQLAlchemy URL of a fresh, empty database on 127.0.0.1 (server `settings`)."""
    with throwaway_server(settings) as server:
        yield server.url()


@contextmanager
def throwaway_server(settings: Mapping[str, str] = FAST) -> Iterator[PgServer]:
    """`throwaway_postgres`, yielding the server (to stop, kill or freeze it)."""
    with _workdir() as base:
        server = PgServer(base, "data", free_port())
        _initdb(server)
        server.start(settings)
        try:
            _run(_bin("createdb"), "-h", HOST, "-p", str(server.port), "-U", USER, DATABASE)
            yield server
        finally:
            pid = server.postmaster_pid()  # never leave it stopped
            for process in [pid, *_children(pid)] if pid is not None else []:
                with contextlib.suppress(OSError):
                    os.kill(process, signal.SIGCONT)
            server.stop("immediate")


STANDBY_NAME = "standby"  # the standby's application_name (synchronous_standby_names)


@dataclass(frozen=True, slots=True)
class ReplicatedPostgres:
    """A primary and its streaming-replication standby, each a server on 127.0.0.1.

    `primary` and `standby` name the servers as they were made; after `promote()` the
    standby takes writes and the old primary (stopped or killed first) stays down.
    The multi-host URLs list the primary first and let the client find the server
    that takes writes."""

    primary: PgServer
    standby: PgServer
    database: str = DATABASE

    def url(self) -> str:
        """The multi-host SQLAlchemy URL, the form the bridge's `database_url` takes.

        SQLAlchemy does not read libpq's `host1:port1,host2:port2` list; its psycopg
        dialect takes repeated `host=` query parameters and hands libpq the list."""
        hosts = "&".join(f"host={HOST}:{s.port}" for s in (self.primary, self.standby))
        return f"postgresql+psycopg://{USER}@/{self.database}?{hosts}&{_READ_WRITE}"

    def conninfo(self) -> str:
        """The multi-host libpq URL (psycopg.connect, psql)."""
        hosts = ",".join(f"{HOST}:{s.port}" for s in (self.primary, self.standby))
        return f"postgresql://{USER}@{hosts}/{self.database}?{_READ_WRITE}"

    def wait_replayed(self, within: float = 30.0) -> None:
        """Until the standby has replayed everything the primary has written so far."""
        target = str(self.primary.query("SELECT pg_current_wal_lsn()"))
        _until(
            lambda: self.standby.query(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"),
            within,
            f"standby replayed up to {target}",
        )

    def stop_primary(self) -> None:
        """A clean shutdown of the primary (a planned switchover)."""
        self.primary.stop("fast")

    def kill_primary(self) -> None:
        """SIGKILL every process of the primary (the primary's site is lost)."""
        self.primary.kill()

    def promote(self, how: Literal["pg_ctl", "sql"] = "pg_ctl", within: float = 60.0) -> None:
        """Make the standby the primary (`pg_ctl promote`, or `SELECT pg_promote()`)."""
        if how == "pg_ctl":
            _run(
                _bin("pg_ctl"),
                "-D",
                str(self.standby.data),
                "-w",
                "-t",
                str(int(within)),
                "promote",
            )
        else:
            done = self.standby.query(f"SELECT pg_promote(true, {int(within)})")
            if not done:
                raise AssertionError("pg_promote() did not finish promoting the standby")
        _until(lambda: not self.standby.in_recovery(), within, "the standby takes writes")


_READ_WRITE = "target_session_attrs=read-write"


def _wait_streaming(primary: PgServer, *, sync: bool) -> None:
    wanted = "sync" if sync else "async"
    _until(
        lambda: primary.query(
            "SELECT count(*) FROM pg_stat_replication WHERE application_name = "
            f"'{STANDBY_NAME}' AND state = 'streaming' AND sync_state = '{wanted}'"
        ),
        60,
        f"the standby streams ({wanted})",
    )


@contextmanager
def replicated_postgres(
    settings: Mapping[str, str] = FAST, *, synchronous: bool = False
) -> Iterator[ReplicatedPostgres]:
    """A primary with an empty database and a standby that streams from it.

    `synchronous`: a commit on the primary returns only once the standby has it on disk
    (synchronous_standby_names), so a promotion loses no acknowledged commit. It is set
    after the base backup, so the promoted standby does not wait for a standby of its own.
    """
    with _workdir() as base:
        primary = PgServer(base, "primary", free_port())
        standby = PgServer(base, "standby", free_port())
        _initdb(primary)
        primary.start(settings)
        started = [primary]
        try:
            _run(_bin("createdb"), "-h", HOST, "-p", str(primary.port), "-U", USER, DATABASE)
            _run(
                _bin("pg_basebackup"),
                "-h",
                HOST,
                "-p",
                str(primary.port),
                "-U",
                USER,
                "-D",
                str(standby.data),
                "--wal-method=stream",
                "--write-recovery-conf",  # standby.signal + primary_conninfo
                "--checkpoint=fast",
                "--no-sync",
            )
            conninfo = (
                f"host={HOST} port={primary.port} user={USER} application_name={STANDBY_NAME}"
            )
            standby.start({**settings, "primary_conninfo": conninfo})
            started.append(standby)
            _wait_streaming(primary, sync=False)
            if synchronous:
                primary.query(f"ALTER SYSTEM SET synchronous_standby_names = '{STANDBY_NAME}'")
                primary.query("SELECT pg_reload_conf()")
                _wait_streaming(primary, sync=True)
            yield ReplicatedPostgres(primary, standby)
        finally:
            for server in started:
                if server.accepting():
                    _run(
                        _bin("pg_ctl"), "-D", str(server.data), "-m", "immediate", "stop",
                        check=False,
                    )  # fmt: skip
