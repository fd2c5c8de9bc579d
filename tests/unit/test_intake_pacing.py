"""The intake's flow control, pure parts: the pause by load (an integral controller), the
smoothed load, the pacer's sampling (clocks given as readings; the sleep is real and short)."""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import time

import pytest

from bridge.intake.pacing import (
    FLOOR,
    MIN_COMMITS,
    SAMPLE_EVERY,
    CommitMark,
    CpuLoad,
    Door,
    OwnerLoad,
    Pacer,
    Reading,
    SharedLoad,
    UsualWaits,
    next_pause,
    read_clocks,
)
from bridge.metrics import Metrics

E = math.e


@pytest.mark.parametrize(
    ("pause", "busy", "seconds", "expected"),
    [
        (0.0, 0.95, 1.0, FLOOR * E**0.5),  # over the mark: a first pause, grown as any
        (0.0, 0.85, 1.0, 0.0),  # under it: none
        (0.1, 1.0, 1.0, 0.1 * E),  # 0.1 over the mark for a second: x e^(10 * 0.1)
        (0.1, 0.95, 0.5, 0.1 * E**0.25),  # it keeps growing while the excess lasts
        (0.5, 1.0, 10.0, 1.0),  # never past the most
        (0.5, 0.8, 0.5, 0.5 / E**0.5),  # below the mark it shrinks the same way
        (0.1, 0.0, 1.0, 0.0),  # idle: gone once under FLOOR
        (0.3, 0.9, 5.0, 0.3),  # at the mark: unchanged
    ],
)
def test_the_pause_grows_while_the_load_is_above_the_mark_and_shrinks_below(
    pause: float, busy: float, seconds: float, expected: float
) -> None:
    assert next_pause(pause, busy, 0.9, 1.0, seconds, gain=10.0) == pytest.approx(expected)


def test_no_pause_when_turned_off() -> None:
    assert next_pause(0.5, 1.0, 0.9, 0.0, 1.0) == 0.0


def test_a_saturated_process_finds_the_pause_that_leaves_the_headroom() -> None:
    """The controller against a simple model of a saturated process: C connections, each
    mail costing 2 ms of CPU, the drain a fixed share. Whatever C and the drain, the pause
    settles where the load is at the mark and stays there (flat out, without a pause, the
    load is at a full CPU)."""
    for connections in (8, 64, 512):
        for drain in (0.3, 0.6):
            pause, loads = 0.0, []
            for _ in range(400):  # 100 s in readings of a quarter second
                rate = connections / (pause + 0.01)  # mails/s the clients would send
                busy = min(1.0, drain + rate * 0.002)  # at most a full CPU
                pause = next_pause(pause, busy, 0.9, 5.0, 0.25)
                loads.append(busy)
            settled = loads[-40:]  # the last 10 s
            assert min(settled) >= 0.88 and max(settled) <= 0.92, (connections, drain)


def test_the_load_is_the_process_share_of_its_cpus_or_the_loop_thread_share() -> None:
    # two CPUs: the process used one CPU-second per second (half its CPUs), the loop a
    # quarter: 0.5; then the loop thread alone used a whole CPU: 1.0 (one interpreter)
    load = CpuLoad(cpus=2, half_life=1e-9)  # no smoothing: each reading is the load
    assert load.update(Reading(0.0, 0.0, 0.0)) == 0.0  # the first reading only starts
    assert load.update(Reading(1.0, 1.0, 0.25)) == pytest.approx(0.5)
    assert load.update(Reading(2.0, 2.0, 1.25)) == pytest.approx(1.0)
    one = CpuLoad(cpus=1, half_life=1e-9)
    one.update(Reading(0.0, 0.0, 0.0))
    assert one.update(Reading(1.0, 0.95, 0.6)) == pytest.approx(0.95)


def test_the_load_is_smoothed_by_its_half_life_and_ignores_no_time_passed() -> None:
    load = CpuLoad(cpus=1, half_life=0.5)
    load.update(Reading(0.0, 0.0, 0.0))
    assert load.update(Reading(0.5, 0.5, 0.0)) == pytest.approx(0.5)  # one half-life at 1.0
    assert load.update(Reading(1.0, 1.0, 0.0)) == pytest.approx(0.75)
    assert load.update(Reading(1.0, 9.0, 9.0)) == pytest.approx(0.75)  # no wall time: kept
    assert load.update(Reading(11.0, 1.0, 0.0)) == pytest.approx(0.0, abs=1e-6)  # idle since


class _Clocks:
    def __init__(self) -> None:
        self.now = Reading(100.0, 0.0, 0.0)
        self.reads = 0

    def __call__(self) -> Reading:
        self.reads += 1
        return self.now

    def wall(self) -> float:  # the cheap look between readings (time.monotonic's place)
        return self.now.wall

    def busy_for(self, seconds: float, share: float) -> None:
        n = self.now
        self.now = Reading(n.wall + seconds, n.process + seconds * share, n.thread)


async def test_the_pacer_waits_counts_and_reads_the_clocks_at_most_every_sample() -> None:
    """One pacer per process serves every door: the pause is the process's, the counts
    are by door."""
    clocks = _Clocks()
    metrics = Metrics.unregistered()
    load = CpuLoad(cpus=1, half_life=1e-9)  # no smoothing: each reading is the load
    pacer = Pacer(0.5, 1.0, metrics, load=load, clocks=clocks, wall=clocks.wall)

    def paced(door: Door) -> tuple[float, float]:
        return (
            metrics.intake_paced.labels(door.value)._value.get(),
            metrics.intake_paced_seconds.labels(door.value)._value.get(),
        )

    assert await pacer.pause(Door.SMTP) == 0.0  # the first reading: no load known yet
    clocks.busy_for(0.04, 1.0)  # a full CPU for 40 ms...
    assert await pacer.pause(Door.SMTP) == 0.0  # ... but too soon to read the clocks again
    assert clocks.reads == 1  # between readings only the wall clock is looked at
    clocks.busy_for(SAMPLE_EVERY, 1.0)  # read now: 0.5 over the mark for 0.29 s
    first = FLOOR * math.exp(10 * 0.5 * (0.04 + SAMPLE_EVERY))
    started = asyncio.get_running_loop().time()
    assert await pacer.pause(Door.SMTP) == pytest.approx(first)
    assert asyncio.get_running_loop().time() - started >= first * 0.9
    clocks.busy_for(0.5, 1.0)  # half a second more at a full CPU: x e^(10 * 0.5 * 0.5)
    expected = first * math.exp(2.5)
    assert await pacer.pause(Door.SMPP) == pytest.approx(expected)
    assert paced(Door.SMTP) == pytest.approx((1, first))
    assert paced(Door.SMPP) == pytest.approx((1, expected))
    clocks.busy_for(SAMPLE_EVERY / 2, 0.0)  # idle, but too soon for a new reading
    assert await pacer.pause(Door.API) == pytest.approx(expected)
    assert paced(Door.API) == pytest.approx((1, expected))
    assert clocks.reads == 3
    clocks.busy_for(1.0, 0.0)  # idle long enough to be read: 0.5 under, x e^-5: gone
    assert await pacer.pause(Door.SMTP) == 0.0
    assert [paced(door)[0] for door in Door] == [1, 1, 1]


async def test_a_pacer_turned_off_reads_no_clock() -> None:
    clocks = _Clocks()
    pacer = Pacer(0.5, 0.0, load=CpuLoad(cpus=1), clocks=clocks, wall=clocks.wall)
    assert await pacer.pause(Door.SMTP) == 0.0
    assert clocks.reads == 0


def test_a_load_written_in_one_process_is_read_in_another() -> None:
    """The first of several processes publishes its load in a page made before the fork."""
    shared = SharedLoad()
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=shared.write, args=(0.97,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert shared.read() == pytest.approx(0.97)


async def test_the_owner_publishes_its_load_at_each_step() -> None:
    clocks = _Clocks()
    shared = SharedLoad()
    owner = OwnerLoad(shared, clocks)
    owner.load = CpuLoad(cpus=1, half_life=1e-9)
    assert await owner.step() == 0
    clocks.busy_for(0.25, 0.95)
    await owner.step()
    assert shared.read() == pytest.approx(0.95)


async def test_another_process_paces_by_the_first_ones_load_when_that_is_higher() -> None:
    clocks = _Clocks()
    shared = SharedLoad()
    pacer = Pacer(
        0.9,
        1.0,
        load=CpuLoad(cpus=1, half_life=1e-9),
        clocks=clocks,
        wall=clocks.wall,
        owner=shared,
    )
    assert await pacer.pause(Door.SMTP) == 0.0
    clocks.busy_for(SAMPLE_EVERY, 0.1)  # this process idles ...
    shared.write(1.0)  # ... the first is saturated
    assert await pacer.pause(Door.SMTP) == pytest.approx(FLOOR * math.exp(10 * 0.1 * SAMPLE_EVERY))
    assert pacer.busy() == 1.0


def test_a_load_never_falls_below_none() -> None:
    load = CpuLoad(cpus=1, half_life=1e-9)
    load.update(Reading(0.0, 5.0, 0.0))
    assert load.update(Reading(1.0, 4.0, 0.0)) == 0.0  # a clock that went back


def test_the_clocks_count_the_cpu_time_of_this_thread_and_process() -> None:
    """A quarter second of CPU on this thread shows in this thread's reading and in the
    process's."""
    before, started = read_clocks(), time.thread_time()
    while time.thread_time() - started < 0.25:
        pass
    after = read_clocks()
    assert after.thread - before.thread >= 0.25
    assert after.process - before.process >= 0.25


def test_the_database_share_is_the_commits_mean_wait_over_the_slow_mark() -> None:
    load = CpuLoad(cpus=1, half_life=1e-9, slow_commit=0.025)
    start = Reading(0.0, 0.0, 0.0, commit_wait=1.0, commits=100)
    # 40 commits waiting 10 ms on average, the CPU nearly idle: 0.4
    load.update(start)
    assert load.update(Reading(1.0, 0.05, 0.05, 1.4, 140)) == pytest.approx(0.4)
    # 20 commits waiting 50 ms: a full load (at most 1), the CPU still idle
    assert load.update(Reading(2.0, 0.1, 0.1, 2.4, 160)) == pytest.approx(1.0)
    # too few commits to say (a lone slow one after an idle spell): only the CPU counts
    few = Reading(3.0, 0.15, 0.15, 2.4 + 0.5 * (MIN_COMMITS - 1), 160 + MIN_COMMITS - 1)
    assert load.update(few) == pytest.approx(0.05)


def test_the_database_share_is_off_with_a_mark_of_zero() -> None:
    load = CpuLoad(cpus=1, half_life=1e-9)  # slow_commit 0: in_flow_commit_wait = 0
    load.update(Reading(0.0, 0.0, 0.0, 0.0, 0))
    assert load.update(Reading(1.0, 0.05, 0.05, 50.0, 100)) == pytest.approx(0.05)


def test_a_fixed_commit_mark_is_what_was_set() -> None:
    mark = CommitMark(0.025)
    assert not mark.off and mark.mark(0.5, 1.0) == mark.mark(0.001, 1.0) == 0.025
    assert CommitMark(0.0).off and not CommitMark(None).off


def test_a_relative_commit_mark_follows_the_usual_wait() -> None:
    """The usual wait: the lowest mean wait seen, at once; it rises at most x2 per doubling
    (of time since it last learned, whoever taught it)."""
    mark = CommitMark(None, ratio=8.0, least=0.010, doubling=100.0)
    assert mark.mark(0.004, 1.0) == pytest.approx(0.032)  # first reading: 4 ms is usual
    assert mark.mark(0.002, 2.0) == pytest.approx(0.016)  # lower: the new usual, at once
    assert mark.mark(0.200, 3.0) == pytest.approx(8 * 0.002 * 2 ** (1 / 100))  # slow: barely
    assert mark.usual == pytest.approx(0.002 * 2 ** (1 / 100))
    mark.learn(0.300, 52.0)  # taught between readings: half a doubling's time
    assert mark.mark(0.200, 102.0) == pytest.approx(8 * 0.004)  # a doubling's time: x2
    assert mark.mark(0.0001, 103.0) == 0.010  # never below the least


def test_commits_far_slower_than_usual_are_a_full_load_on_a_relative_mark() -> None:
    """PostgreSQL's default. On the same host 3 ms is usual: the mark is its least, 25 ms,
    so 40 ms is a full load and 6 ms is not. Across sites 20 ms is usual: the mark is 8
    times that, 160 ms. A process that starts while the commits are slow learns that as
    usual (its CPU share still counts)."""
    local = CpuLoad(cpus=1, half_life=1e-9, slow_commit=CommitMark(None))
    local.update(Reading(0.0, 0.0, 0.0, 0.0, 0))
    assert local.update(Reading(1.0, 0.05, 0.05, 0.3, 100)) == pytest.approx(3 / 25)
    assert local.update(Reading(2.0, 0.1, 0.1, 0.9, 200)) == pytest.approx(6 / 25)
    assert local.update(Reading(3.0, 0.15, 0.15, 4.9, 300)) == pytest.approx(1.0)
    remote = CpuLoad(cpus=1, half_life=1e-9, slow_commit=CommitMark(None))
    remote.update(Reading(0.0, 0.0, 0.0, 0.0, 0))
    assert remote.update(Reading(1.0, 0.05, 0.05, 2.0, 100)) == pytest.approx(1 / 8)
    assert remote.update(Reading(2.0, 0.1, 0.1, 8.0, 200)) == pytest.approx(60 / 160, rel=1e-3)
    started_slow = CpuLoad(cpus=1, half_life=1e-9, slow_commit=CommitMark(None))
    started_slow.update(Reading(0.0, 0.0, 0.0, 0.0, 0))
    assert started_slow.update(Reading(1.0, 0.05, 0.05, 4.0, 100)) == pytest.approx(1 / 8)


async def test_the_warning_says_which_door_waits_and_why(caplog: pytest.LogCaptureFixture) -> None:
    clocks = _Clocks()
    pacer = Pacer(0.5, 1.0, load=CpuLoad(cpus=1, half_life=1e-9), clocks=clocks, wall=clocks.wall)
    await pacer.pause(Door.SMPP)
    clocks.busy_for(SAMPLE_EVERY, 1.0)
    with caplog.at_level(logging.WARNING, logger="bridge.intake"):
        assert await pacer.pause(Door.SMPP) > 0
    [record] = caplog.records
    line = record.getMessage()
    assert line.startswith("SMPP paced: the bridge is busy (load 1.00, above in_flow_busy 0.50")
    assert "new submit_sm wait 0.0" in line and "in_flow_commit_wait" in line


async def test_usual_waits_teaches_the_mark_between_the_doors_readings() -> None:
    """No message comes (a burst drains): the commits since the last look teach the usual
    wait once there are enough of them; a fixed mark learns nothing."""
    waits = [(10.0, 100)]  # the store's running sums: seconds waited, commits
    now = [0.0]
    mark = CommitMark(None, doubling=3600.0)
    usual = UsualWaits(mark, lambda: waits[0], lambda: now[0])
    waits[0], now[0] = (10.0 + 0.07 * 20, 120), 1.0  # the burst: 70 ms
    assert await usual.step() == 0 and mark.usual == pytest.approx(0.07)
    waits[0], now[0] = (11.4 + 0.003 * (MIN_COMMITS - 1), 120 + MIN_COMMITS - 1), 2.0
    await usual.step()  # too few to say: kept for the next look
    assert mark.usual == pytest.approx(0.07)
    waits[0], now[0] = (11.4 + 0.003 * (MIN_COMMITS + 2), 120 + MIN_COMMITS + 2), 3.0
    await usual.step()  # its drain: 3 ms over the commits since the burst
    assert mark.usual == pytest.approx(0.003)
    fixed = CommitMark(0.025)
    await UsualWaits(fixed, lambda: waits[0]).step()
    assert fixed.usual is None
