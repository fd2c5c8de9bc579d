"""A throwaway PostgreSQL server for the store tests: own data dir, own port, stopped by pg_ctl.

PostgreSQL refuses to run as root, so under root the server runs as the `postgres`
system user that Debian's package creates (installed by `make test` when missing).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Fast and unsafe: a throwaway server needs no crash safety (the bridge itself refuses it).
FAST = {"fsync": "off"}


@contextmanager
def throwaway_postgres(settings: Mapping[str, str] = FAST) -> Iterator[str]:
    """Yield a SQLAlchemy URL of a fresh, empty database on 127.0.0.1 (server `settings`)."""
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="mailsms-pg-"))
    data = base / "data"
    if as_user:
        shutil.chown(base, "postgres")
    port = _free_port()
    run = lambda *args: subprocess.run([*as_user, *args], check=True, capture_output=True)  # noqa: E731
    try:
        run(
            _bin("initdb"),
            "-D",
            str(data),
            "-U",
            "mailsms",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        run(
            _bin("pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-t",
            "60",
            "-l",
            str(base / "log"),
            "start",
            "-o",
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={base}"
            + "".join(f" -c {name}={value}" for name, value in settings.items()),
        )
        try:
            run(_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mailsms", "mailsms")
            yield f"postgresql+psycopg://mailsms@127.0.0.1:{port}/mailsms"
        finally:
            run(_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)
