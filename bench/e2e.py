"""`bench/run.py --only e2e`: the bridge end to end, against an SMSC in a process of its own.

The SMSC is `mailsms sandbox serve` (receipts delivered after 50 ms), pinned with the
load generator (and PostgreSQL, when a variant uses it) to CPU 0; a bridge with one
process runs on CPU 1, a bridge with `[server] processes = 2` on both CPUs (the whole
box). So the bridge's CPU is the bridge's work: not the SMSC's submit handling, inbox
writes and receipts. Per variant, one after the other (the others are not running):

1. burst: M mails as fast as reuse C=64 goes, then wait until every order is final;
   bridge CPU (parent and children, from /proc) from the first mail to the last final
   status / M = µs of bridge CPU per mail END TO END (accepted → submitted → receipt →
   final), and M / that time = the end-to-end rate of the burst.
2. sustained: a constant offered load (--rate, default 60 % of the burst's end-to-end
   rate) for --sustain seconds; every second: RSS of the bridge's processes (VmRSS), the
   orders accepted and not yet final. Afterwards: did the queue keep up (accepted =
   submitted = final within --settle seconds after the load ends), p50/p99 from accepted
   (the order's created_at) to submit_sm (its 'submitted' event), RSS first/last/max,
   and the bridge's CPU per order made final in the first and in the last third of the
   load (a cost growing with the history in the database shows as a rise), and the event
   loop threads' share of the bridge's CPU (the rest is the database threads: SQLite and
   the store functions' Python, which a `py-spy --gil` profile under-samples).
3. durability: the 250s received = the rows in "order".

In the burst and the sustained load, the commits per mail and items per commit too, from
the bridge's /metrics (its HTTP listener is on for that; a baseline without the counters
leaves them out). On PostgreSQL, the database server's CPU per mail as well (its
postmaster and every process it runs, from /proc; the benchmark's own progress reads, a
few a second, are in it): on this box PostgreSQL's CPU per statement is of the order of
the bridge's, so a change that moves work from the bridge into the database shows only
here.

Variants: sqlite and sqlite2 (1 and 2 processes; with 2 the binds' process takes no SMTP),
sqlite2all (2 processes, both taking SMTP: `first_process_smtp = "yes"`), pg1 and pg2
(PostgreSQL, 1 and 2 processes, a throwaway server from tests/peers/postgres.py),
base_<variant> with --baseline for each variant asked for (a checkout of another commit,
run with PYTHONPATH right after the variant of the same name; the SMSC is ours; with
PostgreSQL on the same server, its schema dropped and made anew before each).
A bare aiosmtpd on CPU 1, measured in the same run, gives the intake ratio of each burst.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import profile_bridge
import servers
from servers import Server
from sqlalchemy import Engine, create_engine, text

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
MAILSMS = str(Path(PY).parent / "mailsms")
TWO_CPUS = (os.cpu_count() or 1) >= 2
PEER_CPU = 0 if TWO_CPUS else None  # SMSC, load generator, PostgreSQL
BRIDGE_CPU = 1 if TWO_CPUS else None
BOX = "0,1" if TWO_CPUS else None
FINAL = ("delivered", "undeliverable", "expired", "failed", "unconfirmed", "held")

Loadgen = Callable[..., dict[str, Any]]


@dataclass
class E2e:
    name: str
    processes: int
    url: str
    workdir: Path
    bridge: Server
    smsc: Server
    engine: Engine
    env: dict[str, str] | None = None  # the baseline's PYTHONPATH, for its commands too
    http_port: int | None = None  # its /metrics: the group commits' counters
    acked: int = 0
    runs: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)


def pids(server: Server) -> list[int]:
    """The server's process and its children (the bridge's processes with processes > 1)."""
    parent = server.proc.pid
    found = [parent]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent:
            found.append(int(entry))
    return found


def _stat_cpu(path: str) -> float | None:
    """User + system CPU seconds from a /proc stat file (a process's or a thread's)."""
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None  # gone
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_process(procs: list[int]) -> dict[int, float]:
    by = {pid: _stat_cpu(f"/proc/{pid}/stat") for pid in procs}
    return {pid: cpu for pid, cpu in by.items() if cpu is not None}


def cpu_seconds(procs: list[int]) -> float:
    return sum(cpu_by_process(procs).values())


def loop_thread_cpu(procs: list[int]) -> float:
    """CPU seconds of the processes' main threads (each one's event loop; the database
    threads and the default executor are the others)."""
    return sum(_stat_cpu(f"/proc/{pid}/task/{pid}/stat") or 0.0 for pid in procs)


def busy_by_process(before: dict[int, float], procs: list[int], wall: float) -> list[float]:
    """Each process's share of one CPU since `before` (parent first, then children by pid)."""
    after = cpu_by_process(procs)
    order = [procs[0], *sorted(procs[1:])]
    return [round((after.get(p, 0.0) - before.get(p, 0.0)) / max(wall, 1e-3), 2) for p in order]


def rss_mb(procs: list[int]) -> float:
    total = 0
    for pid in procs:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(text('SELECT status, count(*) FROM "order" GROUP BY status')).all()
        submitted = conn.execute(
            text("SELECT count(DISTINCT order_id) FROM order_event WHERE event = 'submitted'")
        ).scalar()
        notices = conn.execute(
            text("SELECT count(*) FROM notice WHERE status IN ('queued', 'deferred')")
        ).scalar()
    by = {str(s): int(n) for s, n in rows}
    return {
        "accepted": sum(by.values()),
        "submitted": int(submitted or 0),
        "final": sum(n for s, n in by.items() if s in FINAL),
        "open": by.get("queued", 0) + by.get("deferred", 0),
        "notices_open": int(notices or 0),
    }


def _dt(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def submit_latency(engine: Engine, ids_from: int) -> dict[str, float | None]:
    """p50/p99 (ms) from an order's created_at (its mail's DATA received) to its first
    submit_sm (the earliest `part.submitted_at`: when the submit began), and to the
    'submitted' line in its history (when the SMSC's answer was recorded), for the orders
    whose numbers come from the run that started at `ids_from`."""
    sql = text(
        'SELECT o.created_at, min(p.submitted_at), min(e.at) FROM "order" o'
        " JOIN part p ON p.order_id = o.id"
        " JOIN order_event e ON e.order_id = o.id AND e.event = 'submitted'"
        " WHERE o.recipient >= :low GROUP BY o.id, o.created_at"
    )
    with engine.connect() as conn:
        rows = conn.execute(sql, {"low": f"+49170{ids_from % 10_000_000:07d}"}).all()
    if not rows:
        return {"p50_ms": None, "p99_ms": None, "rec_p50_ms": None, "rec_p99_ms": None, "n": 0}
    sent = sorted((_dt(b) - _dt(a)).total_seconds() * 1e3 for a, b, _ in rows)
    recorded = sorted((_dt(c) - _dt(a)).total_seconds() * 1e3 for a, _, c in rows)

    def pick(lat: list[float], q: float) -> float:
        return round(lat[min(len(lat) - 1, int(len(lat) * q))], 1)

    return {
        "p50_ms": pick(sent, 0.5),
        "p99_ms": pick(sent, 0.99),
        "rec_p50_ms": pick(recorded, 0.5),
        "rec_p99_ms": pick(recorded, 0.99),
        "n": len(rows),
    }


COMMITS = "mailsms_database_commits_total"
COMMITTED = "mailsms_database_committed_items_total"


def commit_counters(v: E2e) -> tuple[float, float] | None:
    """The bridge's group commits and the items they wrote so far, from its /metrics (all
    its processes); None where the code measured has no such counters (an older baseline)."""
    if v.http_port is None:
        return None
    url = f"http://{servers.HOST}:{v.http_port}/metrics"
    found: dict[str, float] = {}
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            for line in r.read().decode().splitlines():
                name, _, value = line.partition(" ")
                if name in (COMMITS, COMMITTED):
                    found[name] = float(value)
    except OSError:
        return None
    if len(found) != 2:
        return None
    return found[COMMITS], found[COMMITTED]


def commit_figures(
    before: tuple[float, float] | None, after: tuple[float, float] | None, mails: int
) -> dict[str, float | None]:
    """Commits per accepted mail and items per commit between two readings."""
    if before is None or after is None or after[0] <= before[0]:
        return {"commits_per_mail": None, "items_per_commit": None}
    commits, items = after[0] - before[0], after[1] - before[1]
    return {
        "commits_per_mail": round(commits / max(1, mails), 2),
        "items_per_commit": round(items / commits, 1),
    }


def commits_text(rec: dict[str, Any]) -> str:
    if rec.get("commits_per_mail") is None:
        return ""
    return f"; {rec['commits_per_mail']} commits per mail ({rec['items_per_commit']} items each)"


def wait_final(v: E2e, bound: float) -> tuple[float | None, dict[str, int]]:
    """Seconds until accepted = submitted = final and no status mail is left to send
    (None: not within `bound`)."""
    t0 = time.monotonic()
    c = counts(v.engine)
    while time.monotonic() - t0 < bound:
        c = counts(v.engine)
        done = c["accepted"] == c["final"] == c["submitted"] and not c["notices_open"]
        if done and c["accepted"] >= v.acked:
            return time.monotonic() - t0, c
        time.sleep(0.2)
    return None, c


def burst(v: E2e, loadgen: Loadgen, mails: int, bound: float) -> dict[str, Any]:
    procs = pids(v.bridge)
    v.runs += 1
    k0 = commit_counters(v)
    d0 = postgres_cpu(v.url)
    c0, t0, by0 = cpu_seconds(procs), time.monotonic(), cpu_by_process(procs)
    r = loadgen(v.bridge.port, "reuse", 64, mails, 60.0, id_base=v.runs * 1_000_000)
    v.acked += int(r["ok"])
    waited, c = wait_final(v, bound)
    wall = time.monotonic() - t0
    cpu = cpu_seconds(pids(v.bridge)) - c0
    k1 = commit_counters(v)
    rec = {
        "kind": "e2e_burst",
        "variant": v.name,
        "processes": v.processes,
        "intake_per_s": r["mails_per_s"],
        "accepted": r["ok"],
        "errors": r["errors"],
        "all_final": waited is not None,
        "e2e_s": round(wall, 2),
        "e2e_per_s": round(int(r["ok"]) / wall, 1) if waited is not None else None,
        "bridge_cpu_s": round(cpu, 2),
        "bridge_us_per_mail": round(cpu / max(1, int(r["ok"])) * 1e6),
        "db_us_per_mail": db_per_mail(d0, v.url, int(r["ok"])),
        "busy_by_process": busy_by_process(by0, procs, wall),
        "smsc_cpu_s": round(v.smsc.cpu_seconds(), 2),
        "counts": c,
        **commit_figures(k0, k1, int(r["ok"])),
        **submit_latency(v.engine, v.runs * 1_000_000),
    }
    return rec


def sustained(
    v: E2e,
    rate: float,
    seconds: float,
    settle: float,
    loadgen_cmd: Callable[..., list[str]],
    phase: bool = False,
) -> dict[str, Any]:
    """`phase`: the bridge runs under profile_bridge.py; profile this phase alone
    (SIGUSR1 before the load, SIGUSR2 once all is final: OUTDIR/phase/)."""
    v.runs += 1
    id_base = v.runs * 1_000_000
    cmd = loadgen_cmd(v.bridge.port, rate, seconds, id_base)
    procs = pids(v.bridge)
    if phase:
        v.bridge.proc.send_signal(signal.SIGUSR1)
        time.sleep(0.2)
    k0 = commit_counters(v)
    d0 = postgres_cpu(v.url)
    c0, t0, by0 = cpu_seconds(procs), time.monotonic(), cpu_by_process(procs)
    loop0 = loop_thread_cpu(procs)
    gen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples: list[dict[str, Any]] = []
    while gen.poll() is None:
        time.sleep(1.0)
        c = counts(v.engine)
        samples.append(
            {
                "t": round(time.monotonic() - t0, 1),
                "rss_mb": rss_mb(pids(v.bridge)),
                "backlog": c["accepted"] - c["final"],
                "unsubmitted": c["accepted"] - c["submitted"],
                "final": c["final"],
                "cpu_s": round(cpu_seconds(pids(v.bridge)), 2),
            }
        )
    out, err = gen.communicate()
    lines = out.strip().splitlines()
    if gen.returncode != 0 or not lines:
        raise RuntimeError(f"load generator failed ({gen.returncode}): {err[-500:]}")
    r = json.loads(lines[-1])
    v.acked += int(r["ok"])
    load_s = time.monotonic() - t0
    backlog_end = samples[-1]["backlog"] if samples else None
    waited, c = wait_final(v, settle)
    cpu = cpu_seconds(pids(v.bridge)) - c0
    db_us = db_per_mail(d0, v.url, int(r["ok"]))
    k1 = commit_counters(v)
    loop_share = (loop_thread_cpu(procs) - loop0) / cpu if cpu > 0 else None
    busy = busy_by_process(by0, procs, time.monotonic() - t0)
    if phase:
        v.bridge.proc.send_signal(signal.SIGUSR2)
    third = max(1, len(samples) // 3)
    first = statistics.median(s["backlog"] for s in samples[:third]) if samples else 0
    last = statistics.median(s["backlog"] for s in samples[-third:]) if samples else 0
    rss = [s["rss_mb"] for s in samples]
    return {
        # CPU per final order in the first and the last third of the load: a cost that
        # grows with the history in the database shows as a rise
        "us_per_mail_first_third": _cpu_per_final(samples[:third]),
        "us_per_mail_last_third": _cpu_per_final(samples[-third:]),
        "kind": "e2e_sustained",
        "variant": v.name,
        "processes": v.processes,
        "offered_per_s": rate,
        "seconds": round(load_s, 1),
        "accepted": r["ok"],
        "accepted_per_s": round(int(r["ok"]) / max(0.1, load_s), 1),
        "errors": r["errors"],
        "late": r.get("late"),
        "intake_p99_ms": r["p99_ms"],
        "backlog_first_third": first,
        "backlog_last_third": last,
        "backlog_at_end_of_load": backlog_end,
        "final_within_settle_s": None if waited is None else round(waited, 1),
        "kept_up": waited is not None and c["accepted"] == c["submitted"] == c["final"],
        "bridge_us_per_mail": round(cpu / max(1, int(r["ok"])) * 1e6),
        "db_us_per_mail": db_us,
        "busy_by_process": busy,
        # the event loops' threads' share of the bridge's CPU (the rest: database threads)
        "loop_thread_share": None if loop_share is None else round(loop_share, 2),
        "rss_mb_first": rss[0] if rss else None,
        "rss_mb_last": rss[-1] if rss else None,
        "rss_mb_max": max(rss) if rss else None,
        "counts": c,
        **commit_figures(k0, k1, int(r["ok"])),
        "samples": samples,
        **submit_latency(v.engine, id_base),
    }


def _cpu_per_final(samples: list[dict[str, Any]]) -> int | None:
    """µs of bridge CPU per order that became final between the first and the last sample."""
    if len(samples) < 2 or samples[-1]["final"] <= samples[0]["final"]:
        return None
    cpu: float = samples[-1]["cpu_s"] - samples[0]["cpu_s"]
    finals: int = samples[-1]["final"] - samples[0]["final"]
    return round(cpu / finals * 1e6)


@contextmanager
def postgres() -> Iterator[str | None]:
    """A throwaway PostgreSQL (safe durability settings) pinned to the peer CPU, or None."""
    sys.path.insert(0, str(ROOT))
    try:
        from tests.peers.postgres import throwaway_postgres
    except ImportError as exc:
        print(f"PostgreSQL variants skipped: {exc}")
        yield None
        return
    try:
        with throwaway_postgres({}) as url:
            pin_postgres(url)
            yield url
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"PostgreSQL variants skipped: {exc}")
        yield None


def postmasters(url: str) -> list[int]:
    """The postmaster of the PostgreSQL server at `url` (found by the port in its command
    line; its backends rename themselves, so they do not match)."""
    port = url.rsplit(":", 1)[1].split("/", 1)[0]
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"postgres") and port.encode() in b" ".join(cmdline):
            found.append(int(entry))
    return found


def pin_postgres(url: str) -> None:
    """Pin the postmaster and its processes to the peer CPU (new backends inherit it)."""
    if PEER_CPU is None:
        return
    for postmaster in postmasters(url):
        subprocess.run(["taskset", "-p", "-c", str(PEER_CPU), str(postmaster)], capture_output=True)
        for child in pids_of(postmaster):
            subprocess.run(["taskset", "-p", "-c", str(PEER_CPU), str(child)], capture_output=True)


def postgres_cpu(url: str) -> float | None:
    """CPU seconds the PostgreSQL server at `url` has spent so far: its postmaster, the
    processes it runs (a backend per connection, the writers, autovacuum) and those that
    ended (the postmaster's children's times); None for SQLite, or with no server found.
    Read before and after a phase, the difference is what the database cost the phase,
    which the bridge's own CPU does not show (the benchmark's own progress reads, a few
    a second, are in it)."""
    found = postmasters(url) if url.startswith("postgresql") else []
    if not found:
        return None
    total = 0.0
    for postmaster in found:
        try:
            with open(f"/proc/{postmaster}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # own, ended
        total += cpu_seconds(pids_of(postmaster))
    return total


def db_per_mail(before: float | None, url: str, mails: int) -> int | None:
    """The database server's CPU µs per mail since `before` (`postgres_cpu`), or None."""
    after = postgres_cpu(url)
    if before is None or after is None:
        return None
    return round((after - before) / max(1, mails) * 1e6)


def db_text(rec: dict[str, Any]) -> str:
    us = rec.get("db_us_per_mail")
    return "" if us is None else f" + PostgreSQL {us:,} µs CPU/mail"


def pids_of(parent: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == parent:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return out


def start_variant(
    name: str,
    root: Path,
    url: str | None,
    processes: int,
    code: str | None,
    loop: str,
    profile: Path | None = None,
    first_smtp: str = "auto",
    relay_port: int | None = None,
) -> E2e:
    workdir = root / name
    workdir.mkdir()
    smsc_port, smtp_port = servers.free_port(), servers.free_port()
    smsc_cmd = [MAILSMS, "sandbox", "serve", "-c", str(servers.smsc_config(workdir))]
    smsc = servers.start(
        f"{name}_smsc", [*smsc_cmd, "--port", str(smsc_port)], smsc_port, workdir, PEER_CPU
    )
    url = url or f"sqlite:///{workdir / 'bridge.db'}"
    # its HTTP listener for /metrics, unless it is a baseline from before it had one
    has_http = code is None or (Path(code) / "bridge" / "http").is_dir()
    http_port = servers.free_port() if has_http else None
    cfg = servers.e2e_config(
        workdir, smtp_port, smsc_port, url, processes, loop, first_smtp, code, relay_port, http_port
    )
    env = None if code is None else {"PYTHONPATH": code}
    cpu = BRIDGE_CPU if processes == 1 else BOX
    cmd = [MAILSMS, "serve", "-c", str(cfg)]
    if profile is not None:  # cProfile in every thread (bench/profile_bridge.py)
        cmd = [PY, str(HERE / "profile_bridge.py"), str(profile / name), *cmd[1:]]
    bridge = servers.start(name, cmd, smtp_port, workdir, cpu, env)
    return E2e(name, processes, url, workdir, bridge, smsc, create_engine(url), env, http_port)


def prepare(v: E2e, notify: str) -> None:
    servers.wait_ready(v.bridge, timeout=60)
    cfg = str(v.workdir / "bridge.toml")
    suffix = servers.VELOCITY_SUFFIX_DIGITS
    cmds = [[MAILSMS, "customer", "access", "demo", "--velocity-suffix-digits", suffix, "-c", cfg]]
    if notify != "all":
        cmds.append(
            [MAILSMS, "settings", "set", "--user", "demo@example.com", "notify", notify, "-c", cfg]
        )
    # The baseline's commands run its own code (this checkout's refuses the baseline's
    # older schema). A baseline may predate a command or option: said, not fatal.
    env = None if v.env is None else {**os.environ, **v.env}
    for cmd in cmds:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
        if done.returncode == 0:
            continue
        if not v.name.startswith("base_"):
            raise RuntimeError(f"{' '.join(cmd[1:3])} failed: {done.stderr.strip()[-300:]}")
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        print(f"{v.name}: set-up command {' '.join(cmd[1:3])} failed: {tail}", flush=True)


def stop_variant(v: E2e) -> dict[str, Any]:
    code = servers.stop(v.bridge, timeout=60)
    servers.stop(v.smsc)
    rows = counts(v.engine)["accepted"]
    v.engine.dispose()
    return {
        "kind": "e2e_durability",
        "variant": v.name,
        "acked_250": v.acked,
        "order_rows": rows,
        "ok": rows == v.acked,
        "exit_code": code,
    }


def run(a: argparse.Namespace, out: TextIO, loadgen: Loadgen) -> None:
    """Every variant in turn (one at a time on the box); prints the summary."""
    records: list[dict[str, Any]] = []

    def emit(rec: dict[str, Any]) -> None:
        records.append(rec)
        out.write(json.dumps(rec) + "\n")
        out.flush()

    def loadgen_cmd(port: int, rate: float, seconds: float, id_base: int) -> list[str]:
        return servers.pinned(
            [
                PY,
                str(HERE / "loadgen.py"),
                *("--port", str(port), "--mode", "reuse", "--conc", "64", "--n", "1000000"),
                *("--duration", str(seconds), "--id-base", str(id_base), "--rate", str(rate)),
                *("--sender", "demo@example.com", "--domain", servers.DOMAIN),
                *(("--pipelining",) if a.pipelining else ()),
            ],
            PEER_CPU,
        )

    wanted = a.e2e_variants
    to = f"over SMTP to a relay on CPU {PEER_CPU}" if a.e2e_mailer == "smtp" else "into a Maildir"
    print(
        f"\n== end to end: SMSC = `mailsms sandbox serve` on CPU {PEER_CPU} with the load"
        f" generator; bridge (1 process) on CPU {BRIDGE_CPU}, (2 processes) on CPUs {BOX};"
        f" burst {a.e2e_mails} mails, sustained {a.sustain:.0f} s, notify = {a.e2e_notify},"
        f" status mails {to} ==",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="mailsms-e2e-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        port = servers.free_port()
        bare_cmd = [PY, str(HERE / "servers.py"), "--port", str(port), "--lifetime", "3600"]
        bare_cmd += ["--loop", a.loop]  # the same loop as the bridges: a fair ratio
        bare = servers.start("bare", bare_cmd, port, root, BRIDGE_CPU)
        try:
            servers.wait_ready(bare)
            bare.pause()
        except RuntimeError:
            servers.stop(bare)
            raise
        relay: servers.Server | None = None
        if a.e2e_mailer == "smtp":  # the notices' relay: its own process, with the peers
            relay_cmd = [PY, str(HERE / "servers.py"), "--port", str(servers.free_port())]
            relay_cmd += ["--lifetime", "3600"]
            relay = servers.start("relay", relay_cmd, int(relay_cmd[3]), root, PEER_CPU)
            servers.wait_ready(relay)
        pg: str | None = None
        if any(w.startswith("pg") for w in wanted):
            pg = stack.enter_context(postgres())
        plan: list[tuple[str, str | None, int, str | None]] = []
        for w in wanted:
            if w in ("sqlite", "sqlite2", "sqlite2all"):
                plan.append((w, None, 1 if w == "sqlite" else 2, None))
                if a.baseline:  # each variant next to the baseline's
                    plan.append((f"base_{w}", None, 1 if w == "sqlite" else 2, a.baseline))
            elif w in ("pg1", "pg2") and pg is not None:
                plan.append((w, pg, int(w[2]), None))
                if a.baseline:  # on the same server, its schema made anew for each
                    plan.append((f"base_{w}", pg, int(w[2]), a.baseline))
        for name, url, processes, code in plan:
            if url is not None and url.startswith("postgresql"):
                reset_postgres(url)
            profile = Path(out.name).with_suffix(".e2e-prof.d") if a.e2e_profile else None
            first_smtp = "yes" if name.removeprefix("base_") == "sqlite2all" else "auto"
            loop = a.baseline_loop if code is not None and a.baseline_loop else a.loop
            relay_port = relay.port if relay is not None else None
            v = start_variant(
                name, root, url, processes, code, loop, profile, first_smtp, relay_port
            )
            try:
                prepare(v, a.e2e_notify)
                bare.resume()
                b = loadgen(bare.port, "reuse", 64, a.e2e_mails, 60.0, id_base=0)
                bare.pause()
                rec = burst(v, loadgen, a.e2e_mails, a.drain_e2e)
                rec["bare_per_s"] = b["mails_per_s"]
                rec["ratio_to_bare"] = round(rec["intake_per_s"] / b["mails_per_s"], 3)
                emit(rec)
                print(
                    f"{name:12} ({loop}) burst: intake {rec['intake_per_s']:,.0f}/s"
                    f" ({rec['ratio_to_bare']:.2f} × bare {b['mails_per_s']:,.0f}/s),"
                    f" all final: {rec['all_final']} after {rec['e2e_s']} s ="
                    f" {rec['e2e_per_s']} mails/s end to end;"
                    f" bridge {rec['bridge_us_per_mail']:,} µs CPU/mail end to end"
                    f"{db_text(rec)};"
                    f" accepted→submit_sm p50 {rec['p50_ms']} p99 {rec['p99_ms']} ms"
                    f" (→ recorded p50 {rec['rec_p50_ms']} p99 {rec['rec_p99_ms']} ms);"
                    f" busy per process {busy_text(rec['busy_by_process'])}"
                    f"{commits_text(rec)}",
                    flush=True,
                )
                rate = a.rate or max(10.0, round(0.6 * (rec["e2e_per_s"] or 100.0)))
                s = sustained(v, rate, a.sustain, a.settle, loadgen_cmd, profile is not None)
                emit(s)
                print(
                    f"{'':12} sustained {rate:,.0f}/s offered for {s['seconds']} s:"
                    f" accepted {s['accepted']:,} ({s['accepted_per_s']:,.0f}/s, late {s['late']},"
                    f" errors {s['errors']}); backlog first/last third {s['backlog_first_third']}"
                    f"/{s['backlog_last_third']}, at end {s['backlog_at_end_of_load']};"
                    f" kept up (accepted = submitted = final within {a.settle:.0f} s):"
                    f" {s['kept_up']}; bridge {s['bridge_us_per_mail']:,} µs CPU/mail"
                    f" (first/last third {s['us_per_mail_first_third']}"
                    f"/{s['us_per_mail_last_third']}){db_text(s)};"
                    f" accepted→submit_sm p50 {s['p50_ms']} p99 {s['p99_ms']} ms"
                    f" (→ recorded p50 {s['rec_p50_ms']} p99 {s['rec_p99_ms']} ms);"
                    f" RSS {s['rss_mb_first']} → {s['rss_mb_last']} MB (max {s['rss_mb_max']});"
                    f" busy per process {busy_text(s['busy_by_process'])}"
                    f" (the event loop threads' share of its CPU: {s['loop_thread_share']})"
                    f"{commits_text(s)}",
                    flush=True,
                )
                if a.curve:
                    rate_curve(v, a.curve, a.curve_seconds, a.settle, loadgen_cmd, emit)
                if profile is not None:
                    phase = profile / name / "phase"
                    for _ in range(150):  # counters.json is written last (seconds on a busy box)
                        if (phase / "counters.json").exists():
                            break
                        time.sleep(0.1)
                    show_profile(phase, int(s["accepted"]), emit, "sustained phase")
                    show_counters(phase, int(s["accepted"]), emit)
            finally:
                d = stop_variant(v)
                emit(d)
                if profile is not None:
                    show_profile(profile / name, d["acked_250"], emit)
                print(
                    f"{'':12} durability: 250s {d['acked_250']:,}, order rows {d['order_rows']:,}"
                    f" -> {'OK, equal' if d['ok'] else 'MISMATCH'}; exit {d['exit_code']}",
                    flush=True,
                )
        servers.stop(bare)
        if relay is not None:
            servers.stop(relay)
            print(f"notices' relay: {relay.log_tail(200).strip()}", flush=True)


def rate_curve(
    v: E2e,
    rates: list[float],
    seconds: float,
    settle: float,
    loadgen_cmd: Callable[..., list[str]],
    emit: Callable[[dict[str, Any]], None],
) -> None:
    """The bridge's CPU per mail at each offered rate, one after the other on the same
    bridge: at a low rate every mail goes through each stage alone (a transaction, a wake-up
    and a turn of the event loop per step), at a high one the stages batch."""
    cells = []
    for rate in rates:
        s = sustained(v, rate, seconds, settle, loadgen_cmd)
        s["kind"] = "e2e_curve"
        emit(s)
        cells.append(
            f"{rate:,.0f}/s {s['bridge_us_per_mail']:,} µs (busy"
            f" {busy_text(s['busy_by_process'])}, p99 {s['p99_ms']} ms, accepted"
            f" {s['accepted_per_s']:,.0f}/s, backlog {s['backlog_at_end_of_load']} at the end"
            f"{'' if s['kept_up'] else ', fell behind'}"
            f"{'' if s['commits_per_mail'] is None else ', commits per mail '}"
            f"{s['commits_per_mail'] or ''})"
        )
    print(f"{'':12} CPU per mail by offered rate: {'; '.join(cells)}", flush=True)
    # The machine, for reading the low rates: short work after an idle gap costs more.
    cpu = [] if BRIDGE_CPU is None else ["--cpu", str(BRIDGE_CPU)]
    cold = subprocess.run(
        [PY, str(HERE / "cold_wakeups.py"), *cpu], capture_output=True, text=True, timeout=120
    )
    print(f"{'':12} on the bridge's CPU, {cold.stdout.strip() or cold.stderr[-200:]}", flush=True)


def busy_text(busy: list[float]) -> str:
    """Parent first; with one process that is the bridge itself."""
    if len(busy) == 1:
        return f"{busy[0]:.2f}"
    return f"parent {busy[0]:.2f}, " + ", ".join(
        f"#{n} {b:.2f}" for n, b in enumerate(busy[1:], start=1)
    )


def show_counters(phase: Path, mails: int, emit: Callable[[dict[str, Any]], None]) -> None:
    """Per mail of the phase: each worker's steps, empty steps, wake-ups; store calls."""
    try:
        found = json.loads((phase / "counters.json").read_text())
    except (OSError, ValueError):
        print(f"{'':12} counters: none in {phase}")
        return
    emit({"kind": "e2e_counters", "mails": mails, "counters": found})
    for what, values in sorted(found.items()):
        if any(values.values()):
            per = ", ".join(f"{k} {n / max(1, mails):.3f}" for k, n in values.items())
            print(f"{'':14}{what:24} per mail: {per}")


def show_profile(
    profdir: Path, mails: int, emit: Callable[[dict[str, Any]], None], what: str = "whole run"
) -> None:
    """The profiled variant's busy time per mail by area and entry point (compare shares)."""
    summary = profile_bridge.summarize(profdir, mails)
    summary.update(kind="e2e_profile", profiles=str(profdir), phase=what)
    emit(summary)
    if "error" in summary:
        print(f"{'':12} profile: {summary['error']}")
        return
    print(
        f"{'':12} profile, {what} ({profdir}): {summary['busy_us_per_mail']:,} µs/mail busy under"
    )
    print(f"{'':12} the profiler, by thread {summary['threads']}")
    for e in summary["entry_points"]:
        if e["us_per_mail"]:
            print(f"{'':14}{e['what']:40} {e['us_per_mail']:8,.0f} {e['pct']:6.1f}%")
    for f in summary["top_own"]:
        print(
            f"{'':14}{f['function'][:64]:64} {f['calls_per_mail']:6.1f}"
            f" {f['us_per_mail']:7,.0f} {f['pct']:5.1f}%"
        )


def reset_postgres(url: str) -> None:
    """Each PostgreSQL variant starts on an empty schema."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
