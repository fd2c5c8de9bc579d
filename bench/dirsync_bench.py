"""Benchmark: `mailsms dirsync` against a throwaway slapd holding 100,000 AD-like users.

The users are loaded with `slapadd` before slapd starts; then two sync runs happen in
child processes (the first adds everyone, the second is a no-op), each measured for
wall time and peak RSS (os.wait4). Targets from issue 7: a run within 30 s and under
300 MB RSS. Every step has a timeout, so the benchmark is bounded (a few minutes).

    .venv/bin/python bench/dirsync_bench.py [--users 100000] [--keep]

Exit status 0 when both targets are met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlmodel import Session  # noqa: E402

from bridge.db.engine import open_engine, upgrade  # noqa: E402
from bridge.tenants.tables import Customer  # noqa: E402
from tests.peers.slapd import SVC_PASSWORD, Slapd, write_ad_users_ldif  # noqa: E402

TIME_LIMIT_S = 30.0
RSS_LIMIT_MB = 300.0
STEP_TIMEOUT_S = 180.0

CHILD = """
import sys
from pathlib import Path
from bridge.cli.dirsync import dirsync_command
sys.exit(dirsync_command(Path(sys.argv[1]), None, False, False, sys.argv[2], False))
"""


def run_child(conf: Path, url: str) -> tuple[int, float, float, float]:
    """(exit status, seconds, CPU seconds, peak RSS in MB) of one run in a child process."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(conf), url], cwd=ROOT)
    deadline = t0 + STEP_TIMEOUT_S
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            print(f"dirsync run killed after {STEP_TIMEOUT_S:.0f}s")
            break
        time.sleep(0.05)  # polling the child's exit with a deadline
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return proc.returncode, time.monotonic() - t0, cpu, usage.ru_maxrss / 1024.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir for inspection")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dirsync-bench-"))
    server = Slapd(work / "ldap")
    try:
        t = time.monotonic()
        ldif = write_ad_users_ldif(work / "users.ldif", args.users)
        t_gen = time.monotonic() - t
        server.configure()
        t = time.monotonic()
        server.slapadd(ldif)
        t_load = time.monotonic() - t
        server.start()

        url = f"sqlite:///{work / 'bridge.db'}"
        engine = open_engine(url)
        upgrade(engine)
        with Session(engine) as s, s.begin():
            s.add(Customer(name="bench", settings={"default_country": "DE"}))
        engine.dispose()
        (work / "pw").write_text(SVC_PASSWORD)
        conf = work / "bridge.toml"
        conf.write_text(
            f'database_url = "{url}"\n[sandbox]\nenabled = true\n'
            '[dirsync]\ncustomer = "bench"\n[dirsync.ldap]\n'
            f'url = "{server.url}"\nbind_dn = "{server.svc_dn}"\npassword_file = "{work / "pw"}"\n'
            'allow_plaintext = true\nbase_dns = ["ou=Staff,dc=corp,dc=example"]\npage_size = 1000\n'
        )
        print(f"users: {args.users:,}  (LDIF written in {t_gen:.1f}s, slapadd {t_load:.1f}s)")
        ok = True
        for label in ("first run (adds all)", "second run (no-op)"):
            code, seconds, cpu, rss = run_child(conf, url)
            verdict = seconds <= TIME_LIMIT_S and rss <= RSS_LIMIT_MB and code == 0
            ok = ok and verdict
            print(
                f"{label:<22} exit={code} time={seconds:6.2f}s (limit {TIME_LIMIT_S:.0f}s, "
                f"CPU {cpu:5.2f}s)  "
                f"peak RSS={rss:6.1f} MB (limit {RSS_LIMIT_MB:.0f} MB)  "
                f"{'ok' if verdict else 'OVER LIMIT'}"
            )
        load = os.getloadavg()[0]
        print(f"load average {load:.1f} on {os.cpu_count()} CPUs (times grow with foreign load)")
        return 0 if ok else 1
    finally:
        server.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
