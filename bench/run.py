"""`make bench`: the bridge's SMTP intake against a bare aiosmtpd, measured in the same run.

Servers: (a) `bare` - aiosmtpd whose handler only returns 250 (bench/servers.py);
(b) `bridge` - `mailsms serve` with the sandbox SMSC sending delivery receipts, SQLite
and a Maildir in a temp dir; `bridge_norcpt` - the same with receipt = "none".
All run at once, pinned to CPU 1; the load generator (bench/loadgen.py) runs on CPU 0.
For every cell (mode, C) the variants run back to back, order rotated per rep; the
servers not being measured are paused (SIGSTOP), so a bridge working off its queue
cannot take CPU 1 from the one measured. Reported: median mails/s, p50/p99 and server
CPU per mail per variant, the paired ratio bridge/bare (median and min..max of the
per-rep ratios), rows in the bridge's `order` table vs the 250s it gave (durability),
the time to drain the queue after the load, and a profile of the bridge under load.
Then the end-to-end benchmark (bench/e2e.py: the SMSC as `mailsms sandbox serve` in
its own process, bridge CPU per mail until every order is final, a sustained offered
load, processes = 1 vs 2; with --curve, the CPU per mail at each of several offered
rates), then bench/text_bench.py, bench/smpp_bench.py,
bench/smpp_server_bench.py, bench/dirsync_bench.py, bench/lists_bench.py,
bench/notice_bench.py, bench/data_bench.py, bench/push_bench.py, bench/inbound_bench.py
and bench/api_bench.py run, when present.

  .venv/bin/python bench/run.py [--only smtp|profile|e2e|text|smpp|smpp_server|dirsync|
                                 lists|notices|data|push|inbound|api]
                                [--reps 3] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import e2e
import profile_bridge
import servers
from servers import Server

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
MAILSMS = str(Path(PY).parent / "mailsms")
TWO_CPUS = (os.cpu_count() or 1) >= 2
SERVER_CPU = 1 if TWO_CPUS else None
CLIENT_CPU = 0 if TWO_CPUS else None
WARMUP = 300
HOOKS = {
    "text": HERE / "text_bench.py",
    "smpp": HERE / "smpp_bench.py",
    "smpp_server": HERE / "smpp_server_bench.py",
    "dirsync": HERE / "dirsync_bench.py",
    "lists": HERE / "lists_bench.py",
    "notices": HERE / "notice_bench.py",
    "data": HERE / "data_bench.py",
    "push": HERE / "push_bench.py",
    "inbound": HERE / "inbound_bench.py",
    "api": HERE / "api_bench.py",
    "reads": HERE / "read_bench.py",
}
HOOK_TIMEOUT = 90.0
TARGET = 0.25  # issue 2: bridge/bare with reused connections, C=64


def loadgen(
    port: int,
    mode: str,
    conc: int,
    n: int,
    duration: float,
    id_base: int,
    rate: float = 0.0,
    pipelining: bool = False,
) -> dict[str, Any]:
    cmd = servers.pinned(
        [
            PY,
            str(HERE / "loadgen.py"),
            *("--port", str(port), "--mode", mode, "--conc", str(conc)),
            *("--n", str(n), "--duration", str(duration), "--id-base", str(id_base)),
            *("--sender", "demo@example.com", "--domain", servers.DOMAIN),
            *(("--rate", str(rate)) if rate else ()),
            *(("--pipelining",) if pipelining else ()),
        ],
        CLIENT_CPU,
    )
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"load generator failed ({out.returncode}): {out.stderr[-500:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@dataclass
class Variant:
    name: str
    server: Server
    db: Path | None = None  # the bridge's SQLite file
    workdir: Path | None = None
    receipt: str = ""  # the sandbox's receipt mode ("" for bare)
    notify: str = "all"  # the demo user's `notify` setting
    acked: int = 0  # 250s received in total (warm-up included)
    cpu_s: float = 0.0  # server CPU seconds during its runs (warm-up included)
    runs: int = 0
    code: str | None = None  # a baseline checkout: its own CLI configures it (PYTHONPATH)


@dataclass
class Bench:
    args: argparse.Namespace
    out: TextIO
    variants: dict[str, Variant] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)

    def emit(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    def run_load(self, v: Variant, mode: str, conc: int, n: int, duration: float) -> dict[str, Any]:
        """One load run against `v` with every other server paused."""
        for other in self.variants.values():
            if other is not v:
                other.server.pause()
        v.server.resume()
        v.runs += 1
        c0, s0 = v.server.cpu_seconds(), cpu_stat()
        r = loadgen(
            v.server.port,
            mode,
            conc,
            n,
            duration,
            id_base=v.runs * 200_000,
            pipelining=self.args.pipelining,
        )
        cpu, s1 = v.server.cpu_seconds() - c0, cpu_stat()
        v.acked += int(r["ok"])
        v.cpu_s += cpu
        wall = float(r["wall_s"]) or 1.0
        r["server_cpu_util"] = round(cpu / wall, 3)
        r["server_us_per_mail"] = round(cpu / max(1, int(r["ok"])) * 1e6, 1)
        # the server's CPU: busy beyond the server itself (softirq, foreign load) and steal
        k = f"cpu{SERVER_CPU}" if SERVER_CPU is not None else "cpu"
        if k in s0 and k in s1:
            busy = (s1[k][0] - s0[k][0]) / wall
            r["server_cpu_other"] = round(busy - cpu / wall, 3)
            r["server_cpu_steal"] = round((s1[k][1] - s0[k][1]) / wall, 3)
        k = f"cpu{CLIENT_CPU}"
        if CLIENT_CPU is not None and k in s0 and k in s1:
            busy = (s1[k][0] - s0[k][0]) / wall
            r["client_cpu_other"] = round(busy - float(r["client_cpu_util"] or 0), 3)
        return r


def cpu_stat() -> dict[str, tuple[float, float]]:
    """{"cpu1": (busy seconds, steal seconds), ...} from /proc/stat (busy excludes steal)."""
    hz = os.sysconf("SC_CLK_TCK")
    res: dict[str, tuple[float, float]] = {}
    try:
        with open("/proc/stat") as f:
            for line in f:
                if not line.startswith("cpu"):
                    break
                key, *vals = line.split()
                v = [int(x) for x in vals]
                res[key] = ((v[0] + v[1] + v[2] + v[5] + v[6]) / hz, v[7] / hz)
    except (OSError, IndexError, ValueError):
        pass
    return res


def bridge_variant(
    name: str,
    receipt: str,
    root: Path,
    notify: str = "all",
    code: str | None = None,
    loop: str = "asyncio",
) -> Variant:
    """A bridge; `code`: a checkout of another commit to run instead (PYTHONPATH)."""
    workdir = root / name
    workdir.mkdir()
    smtp_port, sandbox_port = servers.free_port(), servers.free_port()
    cfg = servers.bridge_config(workdir, smtp_port, sandbox_port, receipt, loop, code)
    env = None if code is None else {"PYTHONPATH": code}
    cmd = [MAILSMS, "serve", "-c", str(cfg)]
    server = servers.start(name, cmd, smtp_port, workdir, SERVER_CPU, env=env)
    v = Variant(name, server, db=workdir / "bridge.db", workdir=workdir, receipt=receipt, code=code)
    v.notify = notify
    return v


def set_notify(v: Variant) -> None:
    """The demo user gets notify = all; a production user rather has `failures`."""
    if v.notify == "all" or v.workdir is None:
        return
    cmd = [MAILSMS, "settings", "set", "--user", "demo@example.com", "notify", v.notify]
    cmd += ["-c", str(v.workdir / "bridge.toml")]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60, env=_cli_env(v))


def _cli_env(v: Variant) -> dict[str, str] | None:
    """A baseline's admin commands run its own code: today's CLI may refuse its database
    (an older schema) and the setting would silently not be made."""
    return None if v.code is None else {**os.environ, "PYTHONPATH": v.code}


def allow_sequential_numbers(v: Variant) -> None:
    """The load generator writes to consecutive numbers, which the bridge's SMS pumping
    protection holds (see `servers.VELOCITY_SUFFIX_DIGITS`). A baseline
    checkout gets the setting too (else it holds every order and does none of the work
    measured); one that predates it ignores it."""
    if v.workdir is None:
        return
    cmd = [
        MAILSMS,
        "customer",
        "access",
        "demo",
        "--velocity-suffix-digits",
        servers.VELOCITY_SUFFIX_DIGITS,
    ]
    cmd += ["-c", str(v.workdir / "bridge.toml")]
    result = subprocess.run(cmd, capture_output=True, timeout=60, env=_cli_env(v))
    if result.returncode and v.code is None:
        raise RuntimeError(f"{' '.join(cmd)}: {result.stderr.decode(errors='replace')}")
    if result.returncode:  # a baseline that predates the setting has no pumping check
        print(f"{v.name}: velocity setting not made ({result.stderr.decode().strip()[:120]})")


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def status_counts(db: Path) -> dict[str, int]:
    """Orders by status, plus notices still to send as "notices_open"."""
    counts = {
        str(s): int(n) for s, n in query(db, 'SELECT status, count(*) FROM "order" GROUP BY 1')
    }
    sql = "SELECT count(*) FROM notice WHERE status IN ('queued', 'deferred')"
    counts["notices_open"] = int(query(db, sql)[0][0])
    return counts


@contextmanager
def terminated_on_signal() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so that `finally` stops the servers."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


# --- the SMTP benchmark --------------------------------------------------------------


def smtp_bench(args: argparse.Namespace, out: TextIO) -> None:
    with tempfile.TemporaryDirectory(prefix="mailsms-bench-") as tmp:
        root = Path(tmp)
        b = Bench(args, out)
        if args.only != "profile":
            comparison(b, root)
        if args.only == "profile" or not args.no_profile:
            profile(b, root)


def comparison(b: Bench, root: Path) -> None:
    """bare and the bridge variants side by side; durability and drain of each bridge."""
    args = b.args
    t0 = time.monotonic()
    try:
        port = servers.free_port()
        bare_cmd = [PY, str(HERE / "servers.py"), "--port", str(port), "--lifetime", "900"]
        bare_cmd += ["--loop", args.loop]  # the same loop as the bridges: a fair ratio
        b.variants["bare"] = Variant(
            "bare", servers.start("bare", bare_cmd, port, root, SERVER_CPU)
        )
        for prefix, code in [("", None)] + ([("base_", args.baseline)] if args.baseline else []):
            for receipt in args.receipts:
                for notify in args.notify if receipt == "delivered" else ["all"]:
                    name = "bridge" if receipt == "delivered" else f"bridge_{receipt}"
                    name = prefix + name + ("" if notify == "all" else "_fail")
                    b.variants[name] = bridge_variant(name, receipt, root, notify, code, args.loop)
        for v in b.variants.values():
            servers.wait_ready(v.server)
            set_notify(v)
            allow_sequential_numbers(v)
        print(
            f"servers up in {time.monotonic() - t0:.1f} s; warm-up {WARMUP} mails each",
            flush=True,
        )
        for v in b.variants.values():
            b.run_load(v, "reuse", 8, WARMUP, 10.0)
        matrix(b)
        for v in b.variants.values():
            if v.db is not None:
                drain(b, v)
    finally:
        for v in b.variants.values():
            servers.stop(v.server)
    for v in b.variants.values():
        if v.db is not None:
            durability(b, v)
    summarize(b)


def matrix(b: Bench) -> None:
    a = b.args
    names = list(b.variants)
    for rep in range(1, a.reps + 1):
        for mode in a.modes:
            for conc in a.conc:
                k = (rep - 1) % len(names)
                for name in names[k:] + names[:k]:
                    r = b.run_load(b.variants[name], mode, conc, a.n, a.duration)
                    r.update(kind="run", variant=name, rep=rep, ts=time.time())
                    b.emit(r)
                    print(
                        f"rep {rep} {mode:6} C={conc:<3} {name:14} {r['mails_per_s']:8.1f} mails/s"
                        f"  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms"
                        f"  server {r['server_cpu_util']:.2f} core,"
                        f" {r['server_us_per_mail']:.0f} µs/mail"
                        f"  other on its CPU {r.get('server_cpu_other', 0):.2f}"
                        f"  client {r['client_cpu_util']:.2f}"
                        f" (other {r.get('client_cpu_other', 0):.2f})  errors {r['errors']}",
                        flush=True,
                    )


def drain(b: Bench, v: Variant) -> None:
    """Resume only `v` and time how long its queue takes to empty (bounded)."""
    assert v.db is not None
    for other in b.variants.values():
        if other is not v:
            other.server.pause()
    v.server.resume()
    t0, cpu0 = time.monotonic(), v.server.cpu_seconds()
    start = status_counts(v.db)
    open_start = start.get("queued", 0) + start.get("deferred", 0)
    t_dispatched: float | None = None
    t_final: float | None = None
    counts = start
    while time.monotonic() - t0 < b.args.drain:
        counts = status_counts(v.db)
        now = time.monotonic() - t0
        if counts.get("queued", 0) + counts.get("deferred", 0) == 0 and t_dispatched is None:
            t_dispatched = now
        if t_dispatched is not None and (
            v.receipt != "delivered"
            or counts.get("submitted", 0) + counts.get("notices_open", 0) == 0
        ):
            t_final = now
            break
        time.sleep(0.25)
    elapsed, cpu = time.monotonic() - t0, v.server.cpu_seconds() - cpu0
    open_end = counts.get("queued", 0) + counts.get("deferred", 0)
    assert v.workdir is not None
    notices = len(list((v.workdir / "maildir" / "new").glob("*")))
    rec = {
        "kind": "drain",
        "variant": v.name,
        "at_start": start,
        "at_end": counts,
        "seconds": round(elapsed, 2),
        "all_submitted_after_s": None if t_dispatched is None else round(t_dispatched, 2),
        "all_final_after_s": None if t_final is None else round(t_final, 2),
        "dispatched_per_s": round((open_start - open_end) / elapsed, 1) if elapsed > 0 else None,
        "notices_in_maildir": notices,
        "cpu_s": round(cpu, 2),
        "run_cpu_s": round(v.cpu_s, 2),  # during the measured runs (warm-up included)
        "acked": v.acked,
    }
    b.emit(rec)


def durability(b: Bench, v: Variant) -> None:
    assert v.db is not None
    rows = int(query(v.db, 'SELECT count(*) FROM "order"')[0][0])
    mails = int(query(v.db, "SELECT count(*) FROM mail")[0][0])
    b.emit(
        {
            "kind": "durability",
            "variant": v.name,
            "acked_250": v.acked,
            "order_rows": rows,
            "mail_rows": mails,
            "ok": rows == v.acked,
        }
    )


# --- summary -------------------------------------------------------------------------


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(b: Bench) -> None:
    runs = [r for r in b.records if r.get("kind") == "run"]
    print("\n== SMTP intake: medians over reps (mails/s = accepted / (start -> last 250)) ==")
    head = f"{'cell':14} {'variant':14} {'mails/s':>8} {'min..max':>15} {'p50 ms':>8}"
    print(head + f" {'p99 ms':>8} {'srv µs/mail':>11} {'srv core':>8} {'other':>6} {'errors':>6}")
    for mode in b.args.modes:
        for conc in b.args.conc:
            cell = f"{mode} C={conc}"
            for name in b.variants:
                rs = [r for r in runs if (r["mode"], r["conc"], r["variant"]) == (mode, conc, name)]
                if not rs:
                    continue
                rates = [float(r["mails_per_s"]) for r in rs]
                s = {
                    "kind": "summary",
                    "mode": mode,
                    "conc": conc,
                    "variant": name,
                    "n": len(rs),
                    "mails_per_s": round(_med(rates), 1),
                    "min": min(rates),
                    "max": max(rates),
                    "p50_ms": round(_med([float(r["p50_ms"] or 0) for r in rs]), 2),
                    "p99_ms": round(_med([float(r["p99_ms"] or 0) for r in rs]), 2),
                    "server_us_per_mail": round(_med([float(r["server_us_per_mail"]) for r in rs])),
                    "server_cpu_util": round(_med([float(r["server_cpu_util"]) for r in rs]), 2),
                    "server_cpu_other": round(
                        _med([float(r.get("server_cpu_other", 0.0)) for r in rs]), 2
                    ),
                    "errors": sum(int(r["errors"]) for r in rs),
                }
                b.emit(s)
                print(
                    f"{cell:14} {name:14} {s['mails_per_s']:8,.0f} "
                    f"{f'{min(rates):,.0f}..{max(rates):,.0f}':>15} {s['p50_ms']:8.1f} "
                    f"{s['p99_ms']:8.1f} {s['server_us_per_mail']:11,} "
                    f"{s['server_cpu_util']:8.2f} {s['server_cpu_other']:6.2f} {s['errors']:6}"
                )
                cell = ""
    print(
        "(srv core: the server process's CPU in cores; other: the rest of its CPU's busy time"
        " - softirq, foreign load)"
    )
    print("\n== paired ratio variant/bare (median and min..max of the per-rep ratios) ==")
    for mode in b.args.modes:
        for conc in b.args.conc:
            for name in b.variants:
                if name == "bare":
                    continue
                ratios, cpu_ratios = [], []
                for rep in range(1, b.args.reps + 1):
                    got = {
                        r["variant"]: r
                        for r in runs
                        if (r["mode"], r["conc"], r["rep"]) == (mode, conc, rep)
                    }
                    if "bare" in got and name in got and got["bare"]["mails_per_s"]:
                        bare, var = got["bare"], got[name]
                        ratios.append(float(var["mails_per_s"]) / float(bare["mails_per_s"]))
                        if var["server_us_per_mail"]:
                            cpu_ratios.append(
                                float(bare["server_us_per_mail"]) / float(var["server_us_per_mail"])
                            )
                if not ratios:
                    continue
                med = _med(ratios)
                verdict = ""
                if (mode, conc, name) == ("reuse", 64, "bridge"):
                    verdict = f"  target ≥ {TARGET}: {'met' if med >= TARGET else 'NOT met'}"
                b.emit(
                    {
                        "kind": "ratio",
                        "mode": mode,
                        "conc": conc,
                        "variant": name,
                        "ratio": round(med, 3),
                        "min": round(min(ratios), 3),
                        "max": round(max(ratios), 3),
                        "n": len(ratios),
                        "cpu_ratio": round(_med(cpu_ratios), 3),
                    }
                )
                print(
                    f"{mode:6} C={conc:<3} {name + '/bare':20} {med:.3f}"
                    f" ({min(ratios):.3f}..{max(ratios):.3f})"
                    f"  by server CPU per mail {_med(cpu_ratios):.3f}{verdict}"
                )
    print("\n== durability: every 250 backed by a committed order row ==")
    for r in b.records:
        if r.get("kind") == "durability":
            print(
                f'{r["variant"]:14} 250s received {r["acked_250"]:,}  rows in "order"'
                f" {r['order_rows']:,}  (mail rows {r['mail_rows']:,})"
                f"  -> {'OK, equal' if r['ok'] else 'MISMATCH'}"
            )
    print(f"\n== drain after the load (bounded at {b.args.drain:.0f} s each; informational) ==")
    for r in b.records:
        if r.get("kind") == "drain":
            print(
                f"{r['variant']:14} at start {r['at_start']}\n{'':14} after {r['seconds']} s"
                f" {r['at_end']}; all submitted after {r['all_submitted_after_s']} s,"
                f" all final after {r['all_final_after_s']} s;"
                f" {r['dispatched_per_s']} orders/s dispatched; notices {r['notices_in_maildir']:,}"
            )
            if r["all_final_after_s"] is not None and r.get("acked"):
                us = (r["cpu_s"] + r["run_cpu_s"]) / r["acked"] * 1e6
                print(
                    f"{'':14} end to end (runs + drain, all final): {us:,.0f} µs of server CPU"
                    " per mail"
                )


# --- the profile ---------------------------------------------------------------------


def profile(b: Bench, root: Path) -> None:
    """Profile the bridge (receipts delivered) under C=64 (connections reused, or one per
    mail with --profile-mode permsg), then let it work off its queue (bounded) so that
    dispatch, receipts and notices are in the profile too."""
    workdir = root / "profile"
    workdir.mkdir()
    smtp_port, sandbox_port = servers.free_port(), servers.free_port()
    receipt = b.args.profile_receipt
    cfg = servers.bridge_config(workdir, smtp_port, sandbox_port, receipt, b.args.loop)
    profdir = workdir / "prof"
    cmd = [PY, str(HERE / "profile_bridge.py"), str(profdir), "serve", "-c", str(cfg)]
    server = servers.start("profile", cmd, smtp_port, workdir, SERVER_CPU)
    v = Variant("profile", server, db=workdir / "bridge.db", workdir=workdir, receipt=receipt)
    mode = b.args.profile_mode
    print(f"\n== profile: bridge under cProfile (all threads), {mode} C=64 ==", flush=True)
    b.variants = {"profile": v}
    drained: dict[str, Any] = {}
    try:
        servers.wait_ready(v.server)
        allow_sequential_numbers(v)  # else the pumping check holds most orders: no dispatch
        r = b.run_load(v, mode, 64, b.args.profile_mails, b.args.duration)
        drain(b, v)
        drained = b.records[-1]
    finally:
        code = servers.stop(v.server, timeout=60)
    summary = profile_bridge.summarize(profdir, v.acked)
    kept = Path(b.out.name).with_suffix(".prof.d")  # the raw per-thread profiles, for pstats
    shutil.copytree(profdir, kept, dirs_exist_ok=True)
    summary.update(kind="profile", load=r, drain=drained, exit_code=code, profiles=str(kept))
    b.emit(summary)
    if "error" in summary:
        print(f"profile failed: {summary['error']} {v.server.log_tail()}")
        return
    print(
        f"{v.acked:,} mails (warm-up none; {r['mails_per_s']:.0f} mails/s under the profiler);"
        f" queue drained: {drained.get('all_final_after_s') is not None};"
        f" busy {summary['busy_s']} s = {summary['busy_us_per_mail']:,} µs/mail (all threads,"
        " profiler overhead included; compare shares, not absolutes)"
    )
    print("\nbusy time by thread (µs/mail):", summary["threads"])
    print("\nown time by area:                          µs/mail   share")
    for a in summary["areas"][:14]:
        print(f"  {a['area']:40} {a['us_per_mail']:8,.0f} {a['pct']:6.1f}%")
    print("\nentry points (cumulative, own thread):      µs/mail   share")
    for e in summary["entry_points"]:
        print(f"  {e['what']:40} {e['us_per_mail']:8,.0f} {e['pct']:6.1f}%")
    print(f"\n{'top functions by own time:':66} calls/mail µs/mail share")
    for f in summary["top_own"]:
        print(
            f"  {f['function'][:64]:64} {f['calls_per_mail']:6.1f} {f['us_per_mail']:7,.0f}"
            f" {f['pct']:5.1f}%"
        )


# --- other benchmarks ----------------------------------------------------------------


def hook(name: str, out: TextIO) -> None:
    path = HOOKS[name]
    print(f"\n== {name}: {path.relative_to(ROOT)} ==", flush=True)
    if not path.exists():
        print("not present (skipped)")
        out.write(json.dumps({"kind": "hook", "name": name, "present": False}) + "\n")
        return
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            [PY, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=HOOK_TIMEOUT
        )
        rc: int | None = proc.returncode
        text = proc.stdout + (f"\n[stderr]\n{proc.stderr}" if proc.stderr.strip() else "")
    except subprocess.TimeoutExpired as exc:
        rc = None
        text = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        text += f"\n[timed out after {HOOK_TIMEOUT:.0f} s]"
    print(text.rstrip())
    elapsed = round(time.monotonic() - t0, 1)
    print(f"[{name}: exit {rc}, {elapsed} s]")
    out.write(
        json.dumps({"kind": "hook", "name": name, "present": True, "rc": rc, "s": elapsed}) + "\n"
    )


def meta() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "kind": "meta",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "commit": commit,
        "pinned": TWO_CPUS,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--only",
        choices=["smtp", "profile", "e2e", *HOOKS],
        help="run just this benchmark (profile: only the profiled bridge run)",
    )
    p.add_argument("--reps", type=int, default=3, help="repetitions per cell (default 3)")
    p.add_argument("--duration", type=float, default=3.0, help="seconds per run (default 3)")
    p.add_argument("--n", type=int, default=100_000, help="at most this many mails per run")
    p.add_argument("--conc", default="64,8", help="concurrencies (default 64,8)")
    p.add_argument("--modes", default="reuse,permsg", help="connection modes (default both)")
    p.add_argument("--receipts", default="delivered,none", help="bridge variants by receipt mode")
    p.add_argument(
        "--notify",
        default="all",
        help="the demo user's notify for the receipts=delivered bridge: all (the demo's),"
        " failures (a production user's; variant bridge_fail), or both: all,failures",
    )
    p.add_argument(
        "--baseline",
        help="a checkout of another commit (e.g. from `git archive`): its bridge runs as base_*",
    )
    p.add_argument("--drain", type=float, default=25.0, help="max seconds to wait for a drain")
    p.add_argument("--profile-mails", type=int, default=1500, help="mails in the profiled run")
    p.add_argument(
        "--profile-receipt",
        default="delivered",
        choices=["delivered", "none"],
        help="the profiled bridge's receipt mode (default delivered)",
    )
    p.add_argument(
        "--profile-mode",
        default="reuse",
        choices=["reuse", "permsg"],
        help="the profiled run's connections: reused (default) or one per mail",
    )
    p.add_argument("--no-profile", action="store_true", help="skip the profiled run")
    p.add_argument(
        "--e2e-variants",
        default="sqlite,sqlite2,pg1,pg2",
        help="end-to-end variants: sqlite, sqlite2 (1 or 2 processes), sqlite2all (2, both"
        " taking SMTP), pg1, pg2 (PostgreSQL)",
    )
    p.add_argument("--e2e-mails", type=int, default=5000, help="mails in the end-to-end burst")
    p.add_argument(
        "--e2e-notify",
        default="failures",
        choices=["all", "failures"],
        help="the demo user's notify",
    )
    p.add_argument(
        "--e2e-mailer",
        default="maildir",
        choices=["maildir", "smtp"],
        help="where the end-to-end bridges' status mails go: a Maildir (the embedded"
        " default) or over SMTP to a relay in its own process (an aiosmtpd that answers 250)",
    )
    p.add_argument(
        "--loop",
        "--e2e-loop",
        dest="loop",
        default="asyncio",
        choices=["asyncio", "uvloop"],
        help="[server] event_loop of every bridge (the baseline's too) and the loop of the bare"
        " aiosmtpd it is compared with (default asyncio, the bridge's default)",
    )
    p.add_argument(
        "--pipelining",
        action="store_true",
        help="the load generator sends MAIL, RCPT and DATA in one write where the server offers"
        " PIPELINING, as Postfix does (bare aiosmtpd offers none: it gets them one by one)",
    )
    p.add_argument(
        "--baseline-loop",
        choices=["asyncio", "uvloop"],
        help="the end-to-end baseline's event loop, when it differs from --loop (e.g. this"
        " code on both loops: --baseline <archive of HEAD> --loop uvloop --baseline-loop asyncio)",
    )
    p.add_argument(
        "--e2e-profile",
        action="store_true",
        help="run the end-to-end bridges under cProfile (all threads; figures then inflated)",
    )
    p.add_argument(
        "--sustain", type=float, default=90.0, help="seconds of constant offered load (default 90)"
    )
    p.add_argument(
        "--rate", type=float, default=0.0, help="offered mails/s (default: 60%% of the burst's)"
    )
    p.add_argument(
        "--curve",
        default="",
        help="after the sustained load, offer each of these mails/s (e.g. 25,50,100,200) for"
        " --curve-seconds: the bridge's CPU per mail by offered rate",
    )
    p.add_argument("--curve-seconds", type=float, default=20.0, help="seconds per --curve rate")
    p.add_argument("--settle", type=float, default=15.0, help="max s after the load to all final")
    p.add_argument("--drain-e2e", type=float, default=180.0, help="max s for a burst to be final")
    p.add_argument(
        "--quick",
        action="store_true",
        help="1 rep, reuse+permsg C=64 only, no profile; end to end: 1,500 mails, 20 s sustained",
    )
    a = p.parse_args()
    a.conc = [max(1, min(int(c), 512)) for c in a.conc.split(",")]
    a.modes = [m for m in a.modes.split(",") if m in ("reuse", "permsg")]
    a.receipts = [r for r in a.receipts.split(",") if r in ("delivered", "none", "failed")]
    a.notify = [n for n in a.notify.split(",") if n in ("all", "failures")] or ["all"]
    a.reps = max(1, min(a.reps, 10))
    a.duration = max(0.5, min(a.duration, 30.0))
    a.e2e_variants = [
        v
        for v in a.e2e_variants.split(",")
        if v in ("sqlite", "sqlite2", "sqlite2all", "pg1", "pg2")
    ]
    a.sustain = max(5.0, min(a.sustain, 900.0))
    a.curve = [max(1.0, min(float(r), 10_000.0)) for r in a.curve.split(",") if r.strip()]
    a.curve_seconds = max(5.0, min(a.curve_seconds, 300.0))
    if a.quick:
        a.reps, a.conc, a.no_profile, a.receipts = 1, [64], True, ["delivered"]
        a.e2e_mails, a.sustain = min(a.e2e_mails, 1500), min(a.sustain, 20.0)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results / f"bench_{stamp}.jsonl"
    t0 = time.monotonic()
    with open(path, "w") as out, terminated_on_signal():
        info = meta()
        out.write(json.dumps(info) + "\n")
        print(
            f"mailsms bench {info['date']} commit {info['commit']}: {info['cpus']} CPUs"
            f" ({info['cpu_model']}), Python {info['python']}; servers on CPU {SERVER_CPU},"
            f" load generator on CPU {CLIENT_CPU}",
            flush=True,
        )
        if a.only in (None, "smtp", "profile"):
            smtp_bench(a, out)
        if a.only in (None, "e2e"):
            e2e.run(a, out, functools.partial(loadgen, pipelining=a.pipelining))
        for name in HOOKS:
            if a.only in (None, name):
                hook(name, out)
    print(f"\nresults: {path.relative_to(ROOT)}  ({time.monotonic() - t0:.0f} s in all)")


if __name__ == "__main__":
    main()
