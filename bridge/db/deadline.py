"""A database call that gets no answer in time has its connection cut (PostgreSQL).

A server that stops answering without closing its connections — a frozen host or virtual
machine, a disk that no longer completes writes, a proxy (HAProxy, PgBouncer) whose
backend went away while it keeps its clients' connections, a synchronous standby that
never confirms — leaves a statement or a commit waiting without end: the peer's kernel
still acknowledges every packet and answers TCP keepalives, so libpq's `tcp_user_timeout`
and keepalives never fire, and the server's own `statement_timeout` does not run on a
server that does not run. The bridge's database threads would wait forever, each call
after them behind them, every SMTP client's MAIL or DATA until its own timeout, and a
standby promoted meanwhile would never be used.

So each call on a database thread is watched (`Deadlines.watch`): a watchdog thread cuts
the connection of a call still running `within` seconds after it began (`shutdown` of its
socket, both ways), which ends the driver's wait at once with a lost connection. The call
fails as a lost connection does (the store's `StorageUnreachable`: 451 at the SMTP door,
a transient status elsewhere, and every database thread takes a new connection), saying
why. A call whose connection was cut may have committed (a commit whose answer never
came): as after any lost connection, a client that sends again is caught by the
duplicate check.

The watchdog sleeps until the earliest deadline and costs a call a lock, a clock read and
a dict entry. Not for SQLite (a file: no peer that can fall silent).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time

log = logging.getLogger("bridge.store")

# A watchdog that wakes this many seconds after it meant to: the process did not run.
STALL = 2.0
# Seconds more the calls in flight then get before their connections are cut.
GRACE = 1.0


class Watched:
    """One call being watched, as a context manager (`Deadlines.watch`); `cut` once the
    watchdog has cut its connection."""

    __slots__ = ("_deadlines", "cut", "deadline", "fd", "what", "within")

    def __init__(self, deadlines: Deadlines, fd: int, within: float, what: str) -> None:
        self._deadlines = deadlines
        self.fd = fd
        self.within = within
        self.what = what
        self.deadline = time.monotonic() + within
        self.cut = False

    def __enter__(self) -> Watched:
        self._deadlines._add(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._deadlines._remove(self)


class Deadlines:
    """Calls in flight on database threads, and the watchdog that cuts the late ones."""

    def __init__(self, *, watchdog: bool = True) -> None:
        """`watchdog`: False for tests that drive `_sweep` themselves."""
        self._calls: set[Watched] = set()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._watchdog = watchdog
        self._next = math.inf  # when the watchdog wakes next (inf: only when told)
        self.cuts = 0

    def watch(self, fd: int, within: float, what: str) -> Watched:
        """A context manager: the call on the connection of socket `fd` is watched for
        `within` seconds from now; the connection is cut if the block has not ended by
        then (`Watched.cut` says so afterwards)."""
        return Watched(self, fd, within, what)

    def _add(self, call: Watched) -> None:
        with self._lock:
            self._calls.add(call)
            if self._thread is None and not self._closed and self._watchdog:
                self._thread = threading.Thread(target=self._run, name="db-deadlines", daemon=True)
                self._thread.start()
            elif call.deadline < self._next:
                self._changed.notify()  # earlier than the watchdog's wake-up: tell it

    def _remove(self, call: Watched) -> None:
        # Under the lock: the watchdog cuts only a call still registered, so it never
        # shuts down a socket whose call has ended (its descriptor may be reused).
        with self._lock:
            self._calls.discard(call)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._changed.notify()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)

    def _run(self) -> None:
        with self._lock:
            while not self._closed:
                wait = self._sweep(time.monotonic())
                self._changed.wait(wait)

    def _sweep(self, now: float) -> float | None:
        """Cut the calls past their deadline at `now` (under the lock); how long to sleep
        until the next one (None: until told).

        A watchdog that wakes long after it meant to did not run, and neither did the
        process (frozen: a paused virtual machine, a SIGSTOP, a host stalled in swap):
        the calls it finds late may have their answers waiting in their sockets, which
        the database threads read as soon as they run again. They get `GRACE` seconds
        more before their connections are cut, and the log says whose the pause was."""
        stalled = now - self._next
        if stalled > STALL:
            pending = [c for c in self._calls if not c.cut]
            if pending:
                log.warning(
                    "database: this process did not run for %.1f s (frozen or starved: a "
                    "paused virtual machine, a SIGSTOP, a host in swap); %d call(s) in flight "
                    "get %g s more for the answers that came meanwhile",
                    stalled,
                    len(pending),
                    GRACE,
                )
            for call in pending:
                call.deadline = max(call.deadline, now + GRACE)
        for call in self._calls:
            if call.deadline <= now and not call.cut:
                call.cut = True
                self.cuts += 1
                _cut(call)
        # Asleep until the earliest deadline, or until a call with an earlier one comes
        # (with calls of one bound, a new call's is never earlier: no wake-up per call).
        deadlines = [c.deadline for c in self._calls if not c.cut]
        self._next = min(deadlines) if deadlines else math.inf
        return max(0.0, self._next - now) if deadlines else None


def _cut(call: Watched) -> None:
    """Shut the connection's socket down both ways: the driver's wait ends at once."""
    log.error(
        "database: no answer within %g s (%s): its connection is cut; the server does "
        "not answer (a frozen host, a stalled disk, a proxy without its backend, a "
        "synchronous standby that does not confirm)",
        call.within,
        call.what,
    )
    try:
        dup = socket.socket(fileno=os.dup(call.fd))
    except OSError as exc:  # the descriptor is gone: the call is ending anyway
        log.debug("database: could not cut the connection: %s", exc)
        return
    try:
        dup.shutdown(socket.SHUT_RDWR)
    except OSError as exc:
        log.debug("database: could not cut the connection: %s", exc)
    finally:
        dup.close()
