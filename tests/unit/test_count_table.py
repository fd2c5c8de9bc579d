"""The doors' count tables (`bridge/intake/counts.py`): one block of memory, shared by
the processes forked after it was made, with a bounded wait for its lock."""

from __future__ import annotations

import multiprocessing
import random
import time
from collections.abc import Callable

from bridge.intake.access import ConnectionLimiter, limiter_table
from bridge.intake.authguard import AuthGuard, AuthLimits, guard_table
from bridge.intake.counts import CountTable

FORK = multiprocessing.get_context("fork")


def _in_child(work: Callable[[], None]) -> None:
    """Run `work` in a forked process (as `[server] processes` forks its children)."""
    child = FORK.Process(target=work)
    child.start()
    child.join(30)
    assert child.exitcode == 0


def test_connections_counted_by_one_process_count_for_the_other() -> None:
    """Per process, every SMTP process let a client have the whole limit again: the
    kernel spreads one client's connections over the processes sharing the port."""
    table = limiter_table(total=100, shared=True)
    limiter = ConnectionLimiter(per_ip=3, per_ip_per_minute=5, total=100, table=table)

    def two_connections() -> None:
        theirs = ConnectionLimiter(per_ip=3, per_ip_per_minute=5, total=100, table=table)
        assert theirs.admit("10.0.0.1", now=1) is None
        assert theirs.admit("10.0.0.1", now=1) is None

    _in_child(two_connections)
    assert limiter.open("10.0.0.1") == 2 and limiter.open_total == 2
    assert limiter.admit("10.0.0.1", now=2) is None
    assert "too many connections from 10.0.0.1" in (limiter.admit("10.0.0.1", now=2) or "")
    _in_child(lambda: ConnectionLimiter(3, 5, 100, table).release("10.0.0.1", now=3))
    assert limiter.admit("10.0.0.1", now=4) is None  # the other's release freed one
    limiter.release("10.0.0.1", now=4)
    # the rate too: five new connections in the minute, whichever process took them
    assert limiter.admit("10.0.0.1", now=5) is None
    limiter.release("10.0.0.1", now=5)
    assert limiter.open("10.0.0.1") == 2
    assert "per minute" in (limiter.admit("10.0.0.1", now=6) or "")
    assert limiter.admit("10.0.0.1", now=62) is None


def test_auth_failures_in_one_process_lock_the_address_in_the_other() -> None:
    limits = AuthLimits(max_failures=3, max_failures_per_login=100)
    table = guard_table(limits, shared=True)

    def three_failures() -> None:
        theirs = AuthGuard(limits, table=table)
        for n in range(3):
            assert theirs.begin("10.0.0.1", f"user{n}", now=n) is None
            theirs.end("10.0.0.1", f"user{n}", now=n, ok=False)

    _in_child(three_failures)
    locked = AuthGuard(limits, table=table).begin("10.0.0.1", "user9", now=5)
    assert locked is not None and locked.subject == "address" and locked.seconds == 900 - 3


def test_a_process_holding_the_lock_makes_the_others_refuse_in_time_not_hang() -> None:
    """A process stopped while it held the lock (SIGSTOP) must not hang every other
    process's event loop: they refuse for now, after a bounded wait."""
    table = limiter_table(total=100, shared=True)
    table.wait = 0.2
    held, release = FORK.Event(), FORK.Event()

    def hold() -> None:
        with table.locked():
            held.set()
            release.wait(30)

    child = FORK.Process(target=hold)
    child.start()
    try:
        assert held.wait(30)
        limiter = ConnectionLimiter(3, 5, 100, table)
        started = time.monotonic()
        refused = limiter.admit("10.0.0.1") or ""
        assert 0.15 < time.monotonic() - started < 5
        assert "busy" in refused and "10.0.0.1" in refused
        guard = AuthGuard(AuthLimits(), table=guard_table(AuthLimits(), shared=True))
        assert guard.begin("10.0.0.1", "x", now=0) is None  # another table: not held
        guard.table = table  # this one's lock is held: refused for now, not "locked"
        busy = guard.begin("10.0.0.1", "x", now=0)
        assert busy is not None and busy.subject == "busy"
    finally:
        release.set()
        child.join(30)
    assert ConnectionLimiter(3, 5, 100, table).admit("10.0.0.1") is None


def test_a_bucket_of_held_slots_refuses_a_new_client_and_frees_when_they_leave() -> None:
    table = CountTable(keys=8, horizon=60.0)  # one bucket of eight slots
    assert table.slots == 8
    limiter = ConnectionLimiter(per_ip=5, per_ip_per_minute=4, total=100, table=table)
    for n in range(8):
        assert limiter.admit(f"10.0.0.{n}", now=0) is None
    refused = limiter.admit("10.0.1.1", now=1) or ""
    assert "no room to count a new client" in refused and "10.0.1.1" in refused
    limiter.release("10.0.0.3", now=2)
    # gone: its slot, which held only its connection time, goes to the new client
    assert limiter.admit("10.0.1.1", now=3) is None
    assert limiter.open("10.0.0.3") == 0 and limiter.open("10.0.1.1") == 1
    assert limiter.open_total == 8


def test_a_new_key_takes_an_idle_slot_before_a_locked_one() -> None:
    """Forgetting a locked-out address would unlock it: a slot holding only times gives
    way first (the least recently used), a lockout last."""
    limits = AuthLimits(max_failures=2, max_failures_per_login=1000, window=60, lockout=900)
    guard = AuthGuard(limits, table=CountTable(keys=8, horizon=60.0))
    for _ in range(2):
        assert guard.begin("10.0.0.1", "a", now=0) is None
        guard.end("10.0.0.1", "a", now=0, ok=False)  # 10.0.0.1 locked; "a" keeps failures
    for n in range(40):  # many more addresses than the table's eight slots, one failure each
        guard.begin(f"10.1.0.{n}", "a", now=1 + n)
        guard.end(f"10.1.0.{n}", "a", now=1 + n, ok=False)
    locked = guard.begin("10.0.0.1", "b", now=50)
    assert locked is not None and locked.subject == "address"


def test_the_table_counts_as_a_list_of_times_would_over_a_long_random_run() -> None:
    """Each slot's fields (open, lockout, times by period) against a plain model, over
    thousands of random steps of a few keys: a write of one field must not disturb
    another, and the window must move right over gaps short and long."""
    rng = random.Random(7)
    table = CountTable(keys=8, horizon=60.0)  # one bucket: every key shares it
    period = table.period
    keys = [f"10.0.0.{n}" for n in range(6)]
    times: dict[str, list[float]] = {k: [] for k in keys}
    held = dict.fromkeys(keys, 0)
    until = dict.fromkeys(keys, 0.0)
    now = 0.0
    for _ in range(5000):
        now += rng.choice([0.0, 0.01, 0.4, 1.0, 3.0, 17.0, 59.0, 61.0, 200.0])
        key = rng.choice(keys)
        with table.locked():
            slot = table.find(key, now)
            assert slot is not None
            action = rng.randrange(4)
            if action == 0:
                table.add_time(slot, now)
                times[key].append(now)
            elif action == 1:
                table.add_held(slot, 1)
                held[key] += 1
            elif action == 2 and held[key]:
                table.add_held(slot, -1)
                held[key] -= 1
            elif action == 3:
                table.lock_until(slot, now + 30)
                until[key] = now + 30
            first = int(now // period) - 60
            expected = sum(1 for t in times[key] if int(t // period) > first)
            assert table.count(slot, now) == expected
            assert table.held(slot) == held[key]
            if until[key] > now:  # (a slot that holds nothing may be given to another key)
                assert table.locked_until(slot) == until[key]
            else:
                assert table.locked_until(slot) <= now
