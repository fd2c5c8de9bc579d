"""What a short piece of work costs on this machine right after an idle gap.

The bridge's CPU per mail at a low offered rate (`bench/run.py --curve`) is made of many
short wake-ups (an SMTP reply, a database hand-off, a receipt) with milliseconds of idle
time between them. A virtual CPU that was idle runs the next few tens of microseconds of
work slower (caches, TLB and branch predictors refilled, the host's scheduling): here the
same unit of Python work is timed back to back and after idle gaps, in this process's
CPU time, so that the curve's low-rate figures can be read against the machine.

  .venv/bin/python bench/cold_wakeups.py [--cpu 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

UNIT = 300  # loop iterations: some tens of µs of Python, like one step of a mail


def _unit() -> int:
    s, d = 0, {}
    for i in range(UNIT):
        s += i * i
        d[i & 255] = s
    return s


def cost(gap: float, n: int) -> float:
    """Median µs of CPU time of one unit, each run after `gap` seconds of sleep."""
    times = []
    for _ in range(n):
        c0 = time.thread_time()
        _unit()
        times.append(time.thread_time() - c0)
        if gap:
            time.sleep(gap)
    return statistics.median(times) * 1e6


def factors(cpu: int | None) -> dict[str, float]:
    """The unit's cost back to back, and after 1, 10 and 100 ms idle (µs)."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    cost(0, 200)  # warm
    return {
        "hot_us": round(cost(0, 400), 1),
        "after_1ms_us": round(cost(0.001, 200), 1),
        "after_10ms_us": round(cost(0.01, 100), 1),
        "after_100ms_us": round(cost(0.1, 30), 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cpu", type=int, default=None, help="run pinned to this CPU")
    f = factors(p.parse_args().cpu)
    hot = f["hot_us"] or 1.0
    print(
        f"a unit of Python work: {f['hot_us']} µs back to back; after 1 ms idle"
        f" {f['after_1ms_us']} µs ({f['after_1ms_us'] / hot:.1f}×), after 10 ms"
        f" {f['after_10ms_us']} µs ({f['after_10ms_us'] / hot:.1f}×), after 100 ms"
        f" {f['after_100ms_us']} µs ({f['after_100ms_us'] / hot:.1f}×)"
    )


if __name__ == "__main__":
    main()
