"""Flow control at the doors: while this process is saturated, new work waits before it is
taken (a mail before its MAIL is answered, an SMPP submit_sm, a REST API send), so that the
work already accepted keeps its share of the CPU.

Why. One process's CPU is shared by the intake and the drain (submits, receipts, status
mails). Over capacity, an SMTP intake with many connections takes whatever it is
offered, while the SMSC's delivery receipts come through a window of a few deliver_sm,
each answered only after our commit: the receipts get what is left, the final statuses
fall minutes behind, and the SMSC holds a growing pile. Pausing new mail moves the
backlog to where mail waits safely and visibly, the sending MTA's queue, and lets the
bridge finish what it acknowledged (Postfix's `in_flow_delay`, keyed to the load here
instead of to delivery tokens). Every door that takes new messages in a process waits on
that process's one `Pacer` (`Door`): an SMPP client's window, or an API client's
connections, fill while their requests wait, and the client slows as a sending MTA does.

The load (`CpuLoad`) is the largest of three shares, smoothed over about a second: the
process's CPU time (all its threads) per second of wall time divided by the CPUs it may
run on; the event loop thread's own CPU share (one interpreter cannot use more than one
CPU for its Python, whatever the box has); and the database's: the mean wait of the
group commits since the last reading (queued to committed, `Store.waits`) over a mark
(`CommitMark`), at most 1. The third sees what CPU time does not: a database that falls
behind while this process's CPU has room, e.g. with several processes on one SQLite
file, where one write lock and one disk serve them all and a busy intake process makes
the first's commits (its receipts, answered to the SMSC only once stored) wait; or a
PostgreSQL server that runs short of CPU or disk. The mark is `in_flow_commit_wait`
when set; unset, 25 ms with SQLite (a local file), and with PostgreSQL a multiple of
the usual wait this process has seen (the network's round trips and a synchronous
replica's make a commit take 1 ms on one host and tens of ms across sites, at any
load: no one figure fits every server). The pause (`next_pause`) is an integral
controller: while the load is above `in_flow_busy` the pause grows, by a factor that
goes with the excess and the time it lasts; below the mark it shrinks the same way,
down to none; it never passes `in_flow_delay`. A share cannot rise above 1, so it
cannot say how far over capacity the offer is; a pause that keeps growing while the
process stays saturated finds the intake rate that leaves the mark's headroom (one tenth
of the CPU, by default) to the rest of the work, however many connections the clients
open.

With `[server] processes = N` the first process runs dispatch and receipts, and by
default takes no SMTP: the drain that must keep its share is there, the intake in the
others. So the first process publishes its load (`OwnerLoad.step`, four times a second)
in a shared page (`SharedLoad`, an anonymous mapping the parent made before forking), and
each SMTP process paces by the larger of its own load and the first's.
"""

from __future__ import annotations

import asyncio
import logging
import math
import mmap
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from bridge.intake.lograte import LogLimiter
from bridge.metrics import Metrics

log = logging.getLogger("bridge.intake")

SAMPLE_EVERY = 0.25  # seconds between two readings of the CPU clocks, at most one per MAIL
HALF_LIFE = 0.5  # seconds: a reading's weight in the smoothed load halves in this time
# The pause's rate of change: it grows by a factor of e^(GAIN * excess) per second at a
# load `excess` above the mark (0.1 over: x2.7 a second), and shrinks the same way below.
# Relative, not absolute steps: the clients' rate goes with 1 / pause, so a step that
# suits a pause of 20 ms (8 connections) would make one of 2 s (512) swing, and back.
GAIN = 10.0
FLOOR = 0.01  # seconds: the first pause, and the one below which there is none
# SQLite: a group commit's mean wait (queued to committed) that counts as a full load
# ([server] in_flow_commit_wait; the mark is in_flow_busy times it: 22.5 ms by default).
# Up to its capacity a one-process bridge on one CPU waits 2-12 ms; two processes over
# capacity, 30-50 ms (bench/README.md).
SQLITE_COMMIT_WAIT = 0.025
# PostgreSQL, in_flow_commit_wait unset: a mean wait of USUAL_RATIO times the usual one
# counts as a full load, but never less than USUAL_LEAST (SQLite's mark: with 10 ms, one
# process on one host was paced at 50/s, a quarter of its capacity, by the mean waits of
# single readings after idle spells). The usual wait is the lowest mean wait of a reading
# seen; it may rise by a factor of two per USUAL_DOUBLING seconds (a lasting change, such
# as a server moved further away, becomes the new usual one within hours; an overload of
# minutes does not). Measured on one host (bench/README.md):
# one process 3-5 ms at 50/s, 8-38 ms near its capacity, 30-113 ms over it; of two, the
# dispatching process 20-50 ms and the SMTP process 150-280 ms while the queue grew.
USUAL_RATIO = 8.0
USUAL_LEAST = SQLITE_COMMIT_WAIT
USUAL_DOUBLING = 3600.0
# The fewest group commits between two readings whose mean wait counts: a lone commit
# after an idle spell is slow (cold caches) without the database being behind.
MIN_COMMITS = 8


class Door(StrEnum):
    """Where new messages come into a process; each waits on the process's `Pacer`."""

    SMTP = "smtp"  # before MAIL is answered
    SMPP = "smpp"  # before a submit_sm is taken (the SMPP server)
    API = "api"  # before a send is taken (the REST API)

    @property
    def waits(self) -> str:
        """What waits, for the log line."""
        return _WAITS[self]


_WAITS: dict[Door, str] = {
    Door.SMTP: "new mails wait %.2f s before MAIL is answered",
    Door.SMPP: "new submit_sm wait %.2f s before they are taken, each in its window",
    Door.API: "new API sends wait %.2f s before they are taken",
}


def next_pause(
    pause: float, busy: float, above: float, most: float, seconds: float, gain: float = GAIN
) -> float:
    """The pause for a new mail after `seconds` at a load of `busy` (0 = idle, 1 = a full
    CPU), from `pause` before: longer above the mark `above` (starting from `FLOOR`),
    shorter below it (none once under `FLOOR`), never longer than `most`."""
    if most <= 0:
        return 0.0
    if pause <= 0:
        if busy <= above:
            return 0.0
        pause = FLOOR  # and grown for the time over the mark, as any pause
    moved = pause * math.exp(gain * (busy - above) * max(0.0, seconds))
    return 0.0 if moved < FLOOR else min(most, moved)


@dataclass(frozen=True)
class Reading:
    """The clocks at one moment: wall, the process's CPU (all threads), this thread's CPU,
    and the group commits' waits so far (`Store.waits`: seconds summed, how many)."""

    wall: float
    process: float
    thread: float
    commit_wait: float = 0.0
    commits: int = 0


def read_clocks(waits: Callable[[], tuple[float, int]] | None = None) -> Reading:
    """Now. Called on the event loop's thread, so `thread` is the loop's own CPU time;
    `waits`: the store's group commits (`Store.waits`)."""
    wait, commits = (0.0, 0) if waits is None else waits()
    return Reading(time.monotonic(), time.process_time(), time.thread_time(), wait, commits)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, e.g. `taskset`), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity on this platform
        return max(1, os.cpu_count() or 1)


class CommitMark:
    """The group commits' mean wait that counts as a full load: `fixed` (0: off), or,
    with `fixed` None, `ratio` times the usual wait (at least `least`): the lowest mean
    wait of a reading so far, allowed to rise by a factor of two per `doubling` seconds.

    The first reading only sets the usual wait (its share is 1 / `ratio` at most): a
    process that starts while the database is already behind learns that as usual, and
    its CPU share paces it until the database has caught up once (`UsualWaits` also
    learns between the doors' readings, e.g. while a burst drains)."""

    def __init__(
        self,
        fixed: float | None,
        ratio: float = USUAL_RATIO,
        least: float = USUAL_LEAST,
        doubling: float = USUAL_DOUBLING,
    ) -> None:
        self.fixed = fixed
        self.ratio, self.least, self.doubling = ratio, least, doubling
        self.usual: float | None = None  # the usual mean wait, once a reading has shown one
        self.learned_at = 0.0  # when it last learned (monotonic seconds)

    @property
    def off(self) -> bool:
        return self.fixed is not None and self.fixed <= 0

    @property
    def relative(self) -> bool:
        return self.fixed is None

    def learn(self, mean: float, now: float) -> None:
        """Fold in a mean wait seen at `now` (monotonic seconds): the usual wait follows a
        lower one at once, a higher one by at most a factor of two per `doubling` seconds
        since it last learned (whoever taught it: the readings, `UsualWaits`)."""
        if self.fixed is not None:
            return
        if self.usual is None:
            self.usual = mean
        else:
            risen = self.usual * 2.0 ** (max(0.0, now - self.learned_at) / self.doubling)
            self.usual = min(mean, risen)
        self.learned_at = now

    def mark(self, mean: float, now: float) -> float:
        """The mark for a reading at `now` whose commits waited `mean` on average; learns
        the usual wait from it first."""
        if self.fixed is not None:
            return self.fixed
        self.learn(mean, now)
        return max(self.least, self.ratio * (self.usual or 0.0))


class UsualWaits:
    """A worker's step (every second) for a relative `CommitMark`: the group commits' mean
    wait since its last look, once at least `MIN_COMMITS` committed, taught to the mark.
    The doors read the clocks only as messages come; a spell without new messages (a
    burst's drain, a night of receipts) teaches the usual wait too."""

    def __init__(
        self,
        mark: CommitMark,
        waits: Callable[[], tuple[float, int]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mark, self.waits, self.clock = mark, waits, clock
        self.seen = waits()

    async def step(self) -> int:
        """0: nothing done that asks for another step at once."""
        wait, commits = self.waits()
        if commits - self.seen[1] >= MIN_COMMITS:
            self.mark.learn((wait - self.seen[0]) / (commits - self.seen[1]), self.clock())
            self.seen = (wait, commits)
        return 0


class CpuLoad:
    """The process's load, smoothed: fold readings of the clocks into it with `update`.
    `slow_commit`: the group commits' mark (`CommitMark`), or a fixed one in seconds (0:
    the database's share is off)."""

    def __init__(
        self, cpus: int, half_life: float = HALF_LIFE, slow_commit: float | CommitMark = 0.0
    ) -> None:
        self.cpus = max(1, cpus)
        self.half_life = half_life
        self.commit_mark = (
            slow_commit if isinstance(slow_commit, CommitMark) else CommitMark(slow_commit)
        )
        self.busy = 0.0
        self.last: Reading | None = None

    def update(self, now: Reading) -> float:
        """Fold in the load since the previous reading; returns the smoothed load."""
        last, self.last = self.last, now
        if last is None:
            return self.busy
        wall = now.wall - last.wall
        if wall <= 0:
            self.last = last  # no time passed: keep the earlier reading
            return self.busy
        share = max(
            0.0,
            (now.process - last.process) / wall / self.cpus,
            (now.thread - last.thread) / wall,
            self.database(last, now),
        )
        weight = 1.0 - 0.5 ** (wall / self.half_life)
        self.busy += (share - self.busy) * weight
        return self.busy

    def database(self, last: Reading, now: Reading) -> float:
        """The database's share: the mean wait of the group commits between two readings
        over the mark (`CommitMark`), at most 1; 0 with fewer than `MIN_COMMITS` between
        them, or when off."""
        commits = now.commits - last.commits
        if self.commit_mark.off or commits < MIN_COMMITS:
            return 0.0
        mean = max(0.0, (now.commit_wait - last.commit_wait) / commits)
        mark = self.commit_mark.mark(mean, now.wall)
        return min(1.0, mean / mark) if mark > 0 else 0.0


class SharedLoad:
    """One process's smoothed load, written by it and read by the others: eight bytes of a
    shared anonymous mapping (made before the fork, so every child has the same page).
    An aligned eight-byte write is not torn on the platforms we run on; a reader sees the
    value before or after."""

    def __init__(self, page: mmap.mmap | None = None) -> None:
        self.page = page if page is not None else mmap.mmap(-1, mmap.PAGESIZE)

    def write(self, busy: float) -> None:
        struct.pack_into("d", self.page, 0, busy)

    def read(self) -> float:
        return float(struct.unpack_from("d", self.page, 0)[0])


class OwnerLoad:
    """The first of several processes: its load, read four times a second (a worker step)
    and published for the others' pacers."""

    def __init__(
        self,
        shared: SharedLoad,
        clocks: Callable[[], Reading] = read_clocks,
        load: CpuLoad | None = None,
    ) -> None:
        self.shared = shared
        self.clocks = clocks
        self.load = load or CpuLoad(usable_cpus())

    async def step(self) -> int:
        """Read the clocks, publish the load; 0: nothing done that asks for another step."""
        self.shared.write(self.load.update(self.clocks()))
        return 0


class Pacer:
    """The pause before a new mail: reads the clocks (at most every `SAMPLE_EVERY`
    seconds, on the loop's thread), moves the pause by `next_pause`, waits it, counts and
    logs it.

    Between readings a message costs one look at `wall` (the clock of `Reading.wall`,
    `time.monotonic` by default: no system call), not a reading: the CPU clocks are
    system calls, the process's one sums every thread's time, and the commits' waits
    take the store's lock."""

    def __init__(
        self,
        above: float,
        most: float,
        metrics: Metrics | None = None,
        *,
        load: CpuLoad | None = None,
        clocks: Callable[[], Reading] = read_clocks,
        wall: Callable[[], float] = time.monotonic,
        owner: SharedLoad | None = None,
    ) -> None:
        self.above, self.most = above, most
        self.owner = owner  # the first process's load, when this is another one
        self.metrics = metrics or Metrics.unregistered()
        self.load = load or CpuLoad(usable_cpus())
        self.clocks, self.wall = clocks, wall
        self.delay = 0.0  # the pause a new mail waits now
        self.logs = LogLimiter(log, burst=1, total_burst=1, interval=60.0)

    def current(self) -> float:
        """The pause for a new mail now, moved by the load since the last reading when
        that reading is old enough."""
        last = self.load.last
        if last is not None and self.wall() - last.wall < SAMPLE_EVERY:
            return self.delay
        now = self.clocks()
        busy = self.load.update(now)
        if self.owner is not None:
            busy = max(busy, self.owner.read())
        if last is not None:
            seconds = now.wall - last.wall
            self.delay = next_pause(self.delay, busy, self.above, self.most, seconds)
        return self.delay

    def busy(self) -> float:
        """The load the pause follows: this process's, or the first's when that is higher."""
        own = self.load.busy
        return own if self.owner is None else max(own, self.owner.read())

    async def pause(self, door: Door) -> float:
        """Wait as long as the load asks for; returns the seconds waited."""
        if self.most <= 0:
            return 0.0
        delay = self.current()
        if delay <= 0:
            return 0.0
        self.metrics.intake_paced.labels(door.value).inc()
        self.metrics.intake_paced_seconds.labels(door.value).inc(delay)
        self.logs.event(
            logging.WARNING,
            f"paced {door.value}",
            "",
            "%s paced: the bridge is busy (load %.2f, above in_flow_busy %.2f: its share of "
            "the CPU, or its commits' mean wait over their mark (in_flow_commit_wait)); "
            + door.waits
            + " (at most in_flow_delay %.1f s), so that the work already accepted is sent "
            "and its receipts taken in (mailsms_intake_paced_total counts them)",
            door.value.upper(),
            self.busy(),
            self.above,
            delay,
            self.most,
        )
        await asyncio.sleep(delay)
        return delay
