"""The intake's flow control, pure parts: the pause by load, the smoothed load, the pacer's
sampling (clocks given as readings; the sleep is real and short)."""

from __future__ import annotations

import asyncio

import pytest

from bridge.intake.pacing import SAMPLE_EVERY, CpuLoad, Pacer, Reading, pause_for
from bridge.metrics import Metrics


@pytest.mark.parametrize(
    ("busy", "expected"),
    [(0.0, 0.0), (0.5, 0.0), (0.9, 0.0), (0.95, 0.5), (0.99, 0.9), (1.0, 1.0), (1.7, 1.0)],
)
def test_a_new_mail_waits_in_proportion_to_the_load_above_the_mark(
    busy: float, expected: float
) -> None:
    assert pause_for(busy, 0.9, 1.0) == pytest.approx(expected)


def test_no_pause_when_turned_off() -> None:
    assert pause_for(1.0, 0.9, 0.0) == 0.0


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

    def busy_for(self, seconds: float, share: float) -> None:
        n = self.now
        self.now = Reading(n.wall + seconds, n.process + seconds * share, n.thread)


async def test_the_pacer_waits_counts_and_reads_the_clocks_at_most_every_sample() -> None:
    clocks = _Clocks()
    metrics = Metrics.unregistered()
    pacer = Pacer(0.5, 0.2, metrics, load=CpuLoad(cpus=1, half_life=1e-9), clocks=clocks)
    assert await pacer.pause() == 0.0  # the first reading: no load known yet
    clocks.busy_for(1.0, 1.0)  # a full CPU for a second
    started = asyncio.get_running_loop().time()
    assert await pacer.pause() == pytest.approx(0.2)
    assert asyncio.get_running_loop().time() - started >= 0.19
    assert metrics.intake_paced._value.get() == 1
    assert metrics.intake_paced_seconds._value.get() == pytest.approx(0.2)
    clocks.busy_for(SAMPLE_EVERY / 2, 0.0)  # idle, but too soon for a new reading
    assert await pacer.pause() == pytest.approx(0.2)
    clocks.busy_for(SAMPLE_EVERY, 0.0)  # idle long enough to be read: no pause
    assert await pacer.pause() == 0.0
    assert metrics.intake_paced._value.get() == 2


async def test_a_pacer_turned_off_reads_no_clock() -> None:
    clocks = _Clocks()
    pacer = Pacer(0.5, 0.0, load=CpuLoad(cpus=1), clocks=clocks)
    assert await pacer.pause() == 0.0
    assert clocks.reads == 0
