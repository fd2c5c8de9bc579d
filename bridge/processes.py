"""`[server] processes = N`: start N bridge processes on one SMTP port, watch them, stop them.

The parent migrates the database, then forks N children (`bridge.app.Share`): the first
is the whole bridge (SMPP binds, sandbox, SMPP server, HTTP, every queue worker) and
accepts SMTP only with `first_process_smtp = "yes"` (by default, "auto", it does not:
dispatch and receipts, the larger part of the work per mail, get its core); the others
accept SMTP and share the queues that need no bind (notices, pushes, inbound SMS). They
listen on the same port with SO_REUSEPORT, so the kernel spreads the connections; what
they accept is committed to the database, where the first child's dispatcher finds it
(woken at once over a datagram socket pair, which also carries the first child's
wake-ups for the others' mailers and inbound workers); the first child's load is
published in a page they all share, so that the others' SMTP intakes give way when it is
saturated (`bridge/intake/pacing.py`); and the SMTP door's counts per client (open
connections, new ones per minute, AUTH failures) are kept in tables they all share, so
its limits hold for the bridge, not once per process (`bridge/intake/counts.py`). On
SQLite the processes take turns at the one write lock (WAL, busy timeout: a
transaction takes the lock at its first write and waits for it); PostgreSQL lets them
write side by side. SIGTERM or SIGINT to the parent stops every child gracefully (each
finishes its in-flight mails); SIGHUP is passed on to every child (each checks its TLS
certificate files now); a child that exits on its own is logged, the others are stopped
and the parent exits with status 1, so that the service manager restarts the whole
bridge; a parent that ends without stopping them (SIGKILL, the OOM killer) takes them
with it (each gets SIGTERM from the kernel: `_stop_with`).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from bridge.app import Share, loop_factory, prepare_database, run_forever
from bridge.db import engine as db
from bridge.errors import ConfigError, StorageUnavailable
from bridge.intake.listener import shared_counts
from bridge.intake.pacing import SharedLoad
from bridge.metrics import MetricFiles, count_in_files
from bridge.settings import Settings

log = logging.getLogger("bridge")

STOP_TIMEOUT = 30.0  # seconds a child has after SIGTERM (grace for in-flight mails + stop)


def serve(settings: Settings) -> int:
    """Run `[server] processes` bridge processes until SIGTERM/SIGINT; returns the exit status."""
    count = settings.server.processes
    loop_factory(settings.server.event_loop)  # uvloop missing: one line now, not N tracebacks
    engine = db.open_engine(settings.database_url)
    try:
        prepare_database(settings, engine)
    finally:
        engine.dispose()
    try:  # made before the fork, as the shared load below: the SMTP door's counts per client
        counts = shared_counts(settings.smtp)
    except OSError as exc:  # no POSIX shared memory for their lock (a /dev without /dev/shm)
        raise ConfigError(
            f"[server] processes = {count}: the processes' shared counts need POSIX shared "
            f"memory (/dev/shm), which this system refused ({exc}); make /dev/shm available "
            "or set processes = 1"
        ) from None
    reserved = _reserve(settings.smtp.host, settings.smtp.port)
    port = reserved.getsockname()[1]
    smtp = settings.smtp.model_copy(update={"port": port})
    settings = settings.model_copy(update={"smtp": smtp})
    first_smtp = first_accepts_smtp(settings.server.first_process_smtp, count)
    wake_owner, wake_others = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    wake_others.setblocking(False)
    load = SharedLoad()  # made before the fork: the same page in every child
    stopping: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    def on_hangup(_signum: int, _frame: FrameType | None) -> None:  # every child reloads
        for c in children:
            if c.pid is not None and c.is_alive():
                os.kill(c.pid, signal.SIGHUP)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hangup)
    context = multiprocessing.get_context("fork")
    children: list[BaseProcess] = []
    files = MetricFiles.fresh()  # the run's counters, one set of files per child
    try:
        for index in range(count):
            if index == 0:
                share = Share(index, count, wake_owner, smtp=first_smtp, load=load, counts=counts)
            else:
                share = Share(index, count, wake_others, load=load, counts=counts)
            child = context.Process(
                target=_child,
                args=(settings, share, files.directory, os.getpid()),
                name=f"mailsms-{index + 1}",
                daemon=False,
            )
            child.start()
            children.append(child)
        log.info(
            "started %d processes on SMTP port %d: %s",
            count,
            port,
            ", ".join(str(c.pid) for c in children),
        )
        status = _watch(children, stopping, files)
    finally:
        for c in children:
            if c.is_alive() and c.pid is not None:
                os.kill(c.pid, signal.SIGTERM)
        for c in children:
            c.join(STOP_TIMEOUT)
            if c.is_alive():
                log.error("process %d did not stop in %.0f s: killed", c.pid, STOP_TIMEOUT)
                c.kill()
                c.join()
        for s, handler in previous.items():
            signal.signal(s, handler)
        reserved.close()
        files.remove()
        wake_owner.close()
        wake_others.close()
    failed = [c for c in children if c.exitcode != 0]
    for c in failed:
        if status == 0:
            log.error("process %d exited with status %s while stopping", c.pid, c.exitcode)
    return 1 if status or failed else 0


def first_accepts_smtp(setting: str, count: int) -> bool:
    """`[server] first_process_smtp`: "auto" is yes for one process, no for several."""
    if setting == "auto":
        return count == 1
    return setting == "yes"


def _watch(children: list[BaseProcess], stopping: list[int], files: MetricFiles) -> int:
    """Wait for a stop signal (0) or a child's own exit (1, after logging it)."""
    sentinels = {c.sentinel: c for c in children}
    while not stopping:
        for ready in wait(list(sentinels), timeout=0.5):
            if stopping:  # systemd signals the whole control group: the children stop too
                break
            child = sentinels[ready]  # type: ignore[index]
            child.join()
            files.dead(child.pid or 0)
            log.error(
                "process %d (%s) exited with status %s: stopping the others",
                child.pid,
                child.name,
                child.exitcode,
            )
            return 1
    log.info("stopping %d processes", len(children))
    return 0


def _reserve(host: str, port: int) -> socket.socket:
    """Bind (not listen) host:port with SO_REUSEPORT: port 0 becomes one port for all
    children, and the port stays ours while they start."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _child(settings: Settings, share: Share, metrics: Path, parent: int) -> None:
    """One child: the parent's signal handlers off, then the bridge's share until SIGTERM
    (or until its parent, `parent`, is gone)."""
    count_in_files(metrics)  # before the bridge makes its metrics (bridge.metrics)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the bridge's loop takes it (`run`)
    _stop_with(parent)
    try:
        run_forever(settings, share)
    except (ConfigError, StorageUnavailable, OSError) as exc:
        log.error("process %d cannot run: %s", share.index + 1, exc)
        raise SystemExit(1) from None
    except Exception:
        log.exception("process %d failed", share.index + 1)
        raise SystemExit(1) from None


# Linux prctl(2): the signal a process gets when its parent ends.
_PR_SET_PDEATHSIG = 1


def _stop_with(parent: int) -> None:
    """SIGTERM (a graceful stop) to this child when its parent ends, however it ends (a
    SIGKILL, the OOM killer): children left behind would go on accepting SMTP on the
    shared port and sending, unwatched, beside the bridge a service manager starts
    again. Linux only (elsewhere nothing changes). A parent already gone (before the
    prctl): stop now."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() != parent:
        log.error("the parent process %d is gone: this process stops", parent)
        raise SystemExit(1)
