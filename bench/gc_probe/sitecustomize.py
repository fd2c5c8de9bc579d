"""The collector's pauses of every Python process started with this folder on PYTHONPATH.

`PYTHONPATH=bench/gc_probe .venv/bin/python bench/run.py --only e2e …`: each process
(the bridge, the sandbox SMSC, the load generator) writes, every 2 s while it collects,
`/tmp/mailsms-gc/<pid>.json`: its command line and each full collection (generation 2)
or pause over 5 ms as [seconds since start, generation, ms, objects frozen], and per
generation the number of collections and their milliseconds in all ("totals").
"""

import gc
import json
import os
import sys
import time

_OUT = "/tmp/mailsms-gc"
_start = time.monotonic()
_began = [0.0]
_last_write = [_start]
_events: list[tuple[float, int, float, int]] = []
_totals: dict[int, list[float]] = {0: [0, 0.0], 1: [0, 0.0], 2: [0, 0.0]}  # count, ms


def _probe(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _began[0] = time.perf_counter()
        return
    ms = (time.perf_counter() - _began[0]) * 1000
    total = _totals[info["generation"]]
    total[0] += 1
    total[1] += ms
    if info["generation"] == 2 or ms > 5:
        now = round(time.monotonic() - _start, 1)
        _events.append((now, info["generation"], round(ms, 1), gc.get_freeze_count()))
    if time.monotonic() - _last_write[0] > 2:
        _last_write[0] = time.monotonic()
        os.makedirs(_OUT, exist_ok=True)
        with open(f"{_OUT}/{os.getpid()}.json", "w", encoding="utf-8") as out:
            json.dump({"argv": sys.argv, "events": _events, "totals": _totals}, out)


gc.callbacks.append(_probe)
