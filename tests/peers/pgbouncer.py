"""A throwaway PgBouncer in front of a throwaway PostgreSQL, for the tests.

Debian's `pgbouncer` (installed by `make test`), on 127.0.0.1 on a free port, with its own
ini, userlist, log and pid file in a temp dir, in front of a PostgreSQL from
`tests.peers.postgres`; `pool_mode` session or transaction, authentication `trust` (the
user must still be in the auth file, as PgBouncer wants). PgBouncer refuses to run as
root, so under root it runs as the `postgres` system user (`-u postgres`). The package's
own service never starts (`scripts/test-deps.sh`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tests.peers.net import free_port
from tests.peers.postgres import DATABASE, HOST, USER, PgServer

PoolMode = Literal["session", "transaction"]


def _pgbouncer() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None
    )
    if found is None:
        raise RuntimeError("pgbouncer not found; run `make test` (it installs Debian's pgbouncer)")
    return found


@dataclass(frozen=True, slots=True)
class Bouncer:
    """A running PgBouncer: its port on 127.0.0.1, its pool mode, its log."""

    port: int
    pool_mode: PoolMode
    log: Path

    def url(self, database: str = DATABASE, *, declare: bool = True) -> str:
        """The bridge's `database_url` through PgBouncer (`declare`: with the pool mode in
        its query, as the bridge's docs tell users to write it)."""
        query = f"?pool_mode={self.pool_mode}" if declare else ""
        return f"postgresql+psycopg://{USER}@{HOST}:{self.port}/{database}{query}"

    def conninfo(self, database: str = DATABASE) -> str:
        """The libpq URL (what psycopg.connect takes)."""
        return f"postgresql://{USER}@{HOST}:{self.port}/{database}"


def _ini(base: Path, server: PgServer, port: int, pool_mode: PoolMode) -> str:
    return f"""\
[databases]
* = host={HOST} port={server.port}

[pgbouncer]
listen_addr = {HOST}
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {base / "userlist.txt"}
admin_users = {USER}
pool_mode = {pool_mode}
max_client_conn = 200
default_pool_size = 8
server_lifetime = 3600
server_idle_timeout = 600
logfile = {base / "pgbouncer.log"}
pidfile = {base / "pgbouncer.pid"}
"""


@contextmanager
def throwaway_pgbouncer(server: PgServer, pool_mode: PoolMode) -> Iterator[Bouncer]:
    """A PgBouncer in `pool_mode` in front of `server`, stopped at the end."""
    binary = _pgbouncer()
    base = Path(tempfile.mkdtemp(prefix="mailsms-pgbouncer-"))
    as_root = os.geteuid() == 0
    try:
        port = free_port()
        (base / "userlist.txt").write_text(f'"{USER}" ""\n', encoding="utf-8")
        ini = base / "pgbouncer.ini"
        ini.write_text(_ini(base, server, port, pool_mode), encoding="utf-8")
        if as_root:
            for path in (base, base / "userlist.txt", ini):
                shutil.chown(path, "postgres")
        command = [binary, *(["-u", "postgres"] if as_root else []), str(ini)]
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        bouncer = Bouncer(port, pool_mode, base / "pgbouncer.log")
        try:
            _until_accepting(process, port, base / "pgbouncer.log")
            yield bouncer
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _until_accepting(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"pgbouncer exited ({process.returncode}): {stderr}{text}")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError("pgbouncer: not accepting within 20 s") from None
            time.sleep(0.05)
