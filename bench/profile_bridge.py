"""Run `mailsms` under cProfile in every thread, and summarise the result per mail.

  python bench/profile_bridge.py OUTDIR serve -c bridge.toml    # profile until SIGTERM

`python -m cProfile` sees only the main thread, but the bridge commits and queries
on its database thread; here every thread gets its own profiler (wall-clock timer, or
the thread's CPU time with MAILSMS_PROFILE_CLOCK=cpu),
and each writes `OUTDIR/<thread>.prof` at exit. `summarize()` merges them and charges
the time to code areas and to the bridge's entry points, in microseconds per mail.

One phase alone: SIGUSR1 clears every thread's profile (the phase starts), SIGUSR2 writes
what was profiled since into `OUTDIR/phase/` (the profiles go on until exit), with
`counters.json`: each worker's steps, steps that found nothing and wake-ups, and the
store's calls and group commits, found on the live objects.
"""

from __future__ import annotations

import cProfile
import gc
import importlib
import json
import marshal
import os
import pstats
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

# Time in these functions is waiting for work (event loop, idle executor threads).
IDLE = (
    ("~", "<method 'poll' of 'select.epoll' objects>"),
    ("~", "<method 'acquire' of '_thread.lock' objects>"),
    ("~", "<method 'get' of '_queue.SimpleQueue' objects>"),
)

# (label, file path fragment, function name): cumulative time per mail.
ENTRY_POINTS = (
    ("aiosmtpd _getaddr (parse MAIL/RCPT args)", "aiosmtpd/smtp.py", "_getaddr"),
    ("intake: an SMTP session built (per connection)", "bridge/intake/server.py", "__init__"),
    ("intake: DATA's line-ending check", "bridge/intake/hygiene.py", "bare_line_ending"),
    ("intake handle_MAIL (main thread part)", "bridge/intake/handler.py", "handle_MAIL"),
    ("  find_sender (db thread)", "bridge/mt/mails.py", "find_sender"),
    ("intake handle_RCPT", "bridge/intake/handler.py", "handle_RCPT"),
    ("  parse_recipient (phonenumbers)", "bridge/intake/addresses.py", "parse_recipient"),
    ("  stop-list read (is_stopped)", "bridge/inbound/actions_store.py", "is_stopped"),
    ("intake handle_DATA (main thread part)", "bridge/intake/handler.py", "handle_DATA"),
    ("  text.mime.extract (MIME parse)", "bridge/text/mime.py", "extract"),
    ("  compose_text (SMS text plan)", "bridge/intake/sms_plan.py", "compose_text"),
    ("  insert_mails (group commit, db thread)", "bridge/mt/mails.py", "insert_mails"),
    ("  find_duplicates (group commit, db thread)", "bridge/mt/mails.py", "find_duplicates"),
    ("dispatch step (main thread part)", "bridge/mt/dispatch.py", "step"),
    ("  claim_orders (db thread)", "bridge/mt/orders.py", "claim_orders"),
    ("  one order's submit (main thread part)", "bridge/mt/dispatch.py", "_submit"),
    ("  record_outcomes (db thread)", "bridge/mt/dispatch_record.py", "record_outcomes"),
    (
        "    reply assignments (submitted step)",
        "bridge/inbound/store.py",
        "record_order_assignments",
    ),
    ("  SmppTransport.submit", "bridge/transports/smpp.py", "submit"),
    ("    submit_sm parts planned and encoded", "bridge/transports/smpp.py", "_plan"),
    ("    SmppSession.request (window, write, answer)", "bridge/smpp/session.py", "request"),
    ("sandbox SMSC: submit_sm handling", "bridge/sandbox/smsc.py", "_on_bridge_submit"),
    ("sandbox SMSC: inbox write", "bridge/sandbox/smsc.py", "_store"),
    ("sandbox SMSC: send receipt", "bridge/sandbox/smsc.py", "_send_receipt"),
    ("receipts: deliver_sm decoded", "bridge/smpp/pdu.py", "decode_body"),
    (
        "receipts: deliver_sm handled (parse, insert)",
        "bridge/transports/smpp_incoming.py",
        "_on_receipt",
    ),
    ("receipts: on_receipt (insert)", "bridge/inbound/inbox.py", "on_receipt"),
    ("receipts: apply_receipts (db thread)", "bridge/mt/receipts.py", "apply_receipts"),
    ("  settle the touched orders", "bridge/mt/receipts.py", "_settle_orders"),
    ("  status mails queued (final steps)", "bridge/notices/queue.py", "queue_status_notices"),
    ("notices: Mailer.step", "bridge/notices/mailer.py", "step"),
    ("  claim_notices (db thread)", "bridge/notices/queue.py", "claim_notices"),
    ("  Renderer.render (Jinja + EmailMessage)", "bridge/notices/render.py", "render"),
    ("  Renderer.render_bytes (Jinja + MIME)", "bridge/notices/render.py", "render_bytes"),
    ("    Jinja: subject, text, HTML", "bridge/notices/render.py", "_bodies"),
    ("    text parts' transfer encoding", "bridge/notices/mime.py", "_utf8_body"),
    ("  write_maildir", "bridge/notices/mailer.py", "write_maildir"),
    ("  write_maildir_batch (worker thread)", "bridge/notices/mailer.py", "write_maildir_batch"),
    ("  record_notices (db thread)", "bridge/notices/queue.py", "record_notices"),
    ("statements run by bulk_insert / bulk_execute", "bridge/db/bulk.py", "_run"),
    ("statements run by prepared.fetch (reads, RETURNING)", "bridge/db/prepared.py", "fetch"),
    ("sqlite3 commit (fsync)", "", "<method 'commit' of 'sqlite3.Connection' objects>"),
    ("file fsync (Maildir files and new/)", "", "<built-in method posix.fsync>"),
    ("socket send", "", "<method 'send' of '_socket.socket' objects>"),
)

# Own time charged to an area by the function's file (first match wins).
AREAS = (
    ("bridge/intake", "bridge.intake"),
    ("bridge/text", "bridge.text"),
    ("bridge/store", "bridge.store (SQL building)"),
    ("bridge/smpp", "bridge.smpp (PDU codec, session)"),
    ("bridge/transports/sandbox", "sandbox SMSC"),
    ("bridge/", "bridge (other)"),
    ("sqlalchemy", "SQLAlchemy"),
    ("aiosmtpd", "aiosmtpd"),
    ("email/", "stdlib email"),
    ("jinja2", "Jinja2"),
    ("asyncio", "asyncio"),
    ("logging", "logging"),
    ("phonenumbers", "phonenumbers"),
    ("pydantic", "pydantic"),
)
C_AREAS = (
    ("sqlite3", "sqlite3 (C: execute, commit incl. WAL fsync)"),
    ("_socket", "socket calls (C)"),
    ("posix.", "file system (fsync, stat, open, ...)"),
    ("io.open", "file system (fsync, stat, open, ...)"),
)

_profiles: list[tuple[str, cProfile.Profile]] = []


def _profiler() -> cProfile.Profile:
    """Wall-clock time, or each thread's CPU time with MAILSMS_PROFILE_CLOCK=cpu (fsync
    and lock waits then cost nothing; the clock itself costs more per call)."""
    if os.environ.get("MAILSMS_PROFILE_CLOCK") == "cpu":
        return cProfile.Profile(time.thread_time)
    return cProfile.Profile()


def _thread_hook(frame: FrameType, event: str, arg: Any) -> None:
    """First profile event in a new thread: replace this hook by a cProfile profiler."""
    prof = _profiler()
    _profiles.append((threading.current_thread().name, prof))
    prof.enable()


def _counters() -> dict[str, dict[str, int]]:
    """The live workers' and stores' counters (bridge.db.worker.Worker, bridge.db.store.Store)."""
    worker = getattr(sys.modules.get("bridge.db.worker"), "Worker", None)
    store = getattr(sys.modules.get("bridge.db.store"), "Store", None)
    found: dict[str, dict[str, int]] = {}
    if worker is None or store is None:
        return found
    # The bridge froze what its start made (gc.freeze): get_objects() leaves frozen objects
    # out, and the store and the workers are among them. Unfrozen for the look, then
    # frozen again (with what came since: the collector's full passes stay short).
    gc.unfreeze()
    objects = gc.get_objects()
    gc.freeze()
    for obj in objects:
        counts = getattr(obj, "counts", None) if isinstance(obj, worker | store) else None
        if not isinstance(counts, dict):
            continue  # code from before the counters
        found["store" if isinstance(obj, store) else f"worker {obj.name}"] = dict(counts)
    return found


def _phase_signals(outdir: Path, main_prof: cProfile.Profile) -> None:
    """SIGUSR1: clear every profile and note the counters; SIGUSR2: write the phase."""
    start: dict[str, dict[str, int]] = {}

    def begin(_signum: int, _frame: FrameType | None) -> None:
        try:
            _begin()
        except Exception as exc:  # never into the bridge's event loop
            print(f"profile_bridge: phase start failed: {exc!r}", file=sys.stderr)

    def end(_signum: int, _frame: FrameType | None) -> None:
        try:
            _end()
        except Exception as exc:
            print(f"profile_bridge: phase end failed: {exc!r}", file=sys.stderr)

    def _begin() -> None:
        start.clear()
        start.update(_counters())  # before the clear: its own cost stays out of the phase
        for prof in [main_prof, *(p for _, p in _profiles)]:
            prof.clear()

    def _end() -> None:
        phase = outdir / "phase"
        phase.mkdir(parents=True, exist_ok=True)
        for n, (name, prof) in enumerate([("MainThread", main_prof), *_profiles]):
            prof.snapshot_stats()  # unlike create_stats, leaves the profiler running
            if not prof.stats:
                continue  # idle all phase long (pstats cannot read an empty file)
            with open(phase / f"{name or 'thread'}-{n}.prof", "wb") as f:
                marshal.dump(prof.stats, f)
        now = _counters()
        delta = {
            what: {k: v - start.get(what, {}).get(k, 0) for k, v in values.items()}
            for what, values in now.items()
        }
        (phase / "counters.json").write_text(json.dumps(delta, indent=1))

    signal.signal(signal.SIGUSR1, begin)
    signal.signal(signal.SIGUSR2, end)


def run(outdir: Path, argv: list[str]) -> None:
    # imported by name: this file type-checks on its own, whatever state bridge/ is in
    cli = importlib.import_module("bridge.cli")

    outdir.mkdir(parents=True, exist_ok=True)
    threading.setprofile(_thread_hook)
    main_prof = _profiler()
    _phase_signals(outdir, main_prof)
    sys.argv = ["mailsms", *argv]
    main_prof.enable()
    try:
        cli.main()
    except SystemExit:
        pass
    finally:
        main_prof.disable()
        threading.setprofile(None)
        main_prof.dump_stats(outdir / "MainThread.prof")
        for n, (name, prof) in enumerate(_profiles):
            prof.dump_stats(outdir / f"{name or 'thread'}-{n}.prof")


def _area(file: str, func: str) -> str:
    if file == "~":  # a C function: name it by its type or module
        for frag, label in C_AREAS:
            if frag in func:
                return label
        return "other C calls"
    for frag, label in AREAS:
        if frag in file:
            return label
    return "other Python"


def summarize(outdir: Path, mails: int, top: int = 15) -> dict[str, Any]:
    """Merge the per-thread profiles; time per mail by area, entry point and function."""
    files = sorted(outdir.glob("*.prof"))
    if not files or mails <= 0:
        return {"error": f"no profiles in {outdir} or no mails"}
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]]
    merged = pstats.Stats(str(files[0]))
    for f in files[1:]:
        merged.add(str(f))
    raw = merged.stats  # type: ignore[attr-defined]
    threads: dict[str, float] = {}
    for f in files:
        st = pstats.Stats(str(f)).stats  # type: ignore[attr-defined]
        busy_s = sum(v[2] for k, v in st.items() if (k[0], k[2]) not in IDLE)
        threads[f.stem] = threads.get(f.stem, 0.0) + busy_s
    total = sum(v[2] for v in raw.values())
    idle = sum(v[2] for k, v in raw.items() if (k[0], k[2]) in IDLE)
    busy = max(total - idle, 1e-9)
    per_mail = 1e6 / mails

    areas: dict[str, float] = {}
    for (file, _line, func), v in raw.items():
        if (file, func) in IDLE:
            continue
        label = _area(file, func)
        areas[label] = areas.get(label, 0.0) + v[2]

    def cum(frag: str, func: str) -> float:
        return sum(v[3] for k, v in raw.items() if k[2] == func and frag in k[0])

    own = sorted(
        ((k, v) for k, v in raw.items() if (k[0], k[2]) not in IDLE),
        key=lambda kv: kv[1][2],
        reverse=True,
    )[:top]
    return {
        "mails": mails,
        "threads": {
            t: round(b * 1e6 / mails, 1)
            for t, b in sorted(threads.items(), key=lambda kv: kv[1], reverse=True)
            if b * 1e6 / mails >= 1
        },
        "busy_s": round(busy, 3),
        "idle_s": round(idle, 3),
        "busy_us_per_mail": round(busy * per_mail, 1),
        "areas": [
            {"area": a, "us_per_mail": round(t * per_mail, 1), "pct": round(100 * t / busy, 1)}
            for a, t in sorted(areas.items(), key=lambda kv: kv[1], reverse=True)
        ],
        "entry_points": [
            {
                "what": label,
                "us_per_mail": round(cum(frag, func) * per_mail, 1),
                "pct": round(100 * cum(frag, func) / busy, 1),
            }
            for label, frag, func in ENTRY_POINTS
        ],
        "top_own": [
            {
                "function": f"{_short(k[0])}:{k[1]}({k[2]})",
                "calls_per_mail": round(v[1] / mails, 2),
                "us_per_mail": round(v[2] * per_mail, 1),
                "pct": round(100 * v[2] / busy, 1),
            }
            for k, v in own
        ],
    }


def _short(file: str) -> str:
    for marker in ("site-packages/", "python3.11/", "/main/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: profile_bridge.py OUTDIR serve -c bridge.toml")
    run(Path(sys.argv[1]), sys.argv[2:])
