"""The watchdog of database calls (bridge/db/deadline.py), on a socket pair: a call still
running at its deadline has its socket shut down (the driver's wait ends at once); a
call that ended in time is never cut, nor its descriptor touched afterwards."""

from __future__ import annotations

import socket
import threading
import time

from bridge.db.deadline import GRACE, STALL, Deadlines


def test_a_call_past_its_deadline_has_its_socket_shut_down() -> None:
    deadlines = Deadlines()
    ours, peer = socket.socketpair()
    try:
        started = time.monotonic()
        with deadlines.watch(ours.fileno(), 0.2, "a silent server") as call:
            ours.settimeout(10)
            got = ours.recv(1)  # the peer never writes: only the cut ends this wait
        assert got == b"" and call.cut and deadlines.cuts == 1
        assert time.monotonic() - started < 5
    finally:
        deadlines.close()
        ours.close()
        peer.close()


def test_a_call_that_ended_in_time_is_never_cut() -> None:
    deadlines = Deadlines()
    ours, peer = socket.socketpair()
    try:
        for _ in range(50):
            with deadlines.watch(ours.fileno(), 0.05, "quick") as call:
                pass
            assert not call.cut
        time.sleep(0.3)  # well past every deadline
        peer.sendall(b"x")
        ours.settimeout(5)
        assert ours.recv(1) == b"x" and deadlines.cuts == 0
    finally:
        deadlines.close()
        ours.close()
        peer.close()


def test_calls_on_several_threads_each_keep_their_own_deadline() -> None:
    """A long bound watched first does not delay the cut of a short one after it."""
    deadlines = Deadlines()
    slow, slow_peer = socket.socketpair()
    fast, fast_peer = socket.socketpair()
    results: dict[str, float] = {}

    def wait(name: str, sock: socket.socket, within: float) -> None:
        started = time.monotonic()
        with deadlines.watch(sock.fileno(), within, name):
            sock.settimeout(10)
            sock.recv(1)
        results[name] = time.monotonic() - started

    try:
        long_one = threading.Thread(target=wait, args=("slow", slow, 3600))
        long_one.start()
        time.sleep(0.1)
        wait("fast", fast, 0.3)
        assert results["fast"] < 3, results
        slow_peer.sendall(b"x")  # the slow call ends by an answer, uncut
        long_one.join(5)
        assert "slow" in results and deadlines.cuts == 1
    finally:
        deadlines.close()
        for s in (slow, slow_peer, fast, fast_peer):
            s.close()


def test_after_a_pause_of_the_process_calls_get_a_moment_for_answers_already_there() -> None:
    """The watchdog waking long after it meant to means the process did not run (a
    paused VM, SIGSTOP): a call found late then may have its answer in its socket, so it
    gets GRACE seconds more; one still without an answer after that is cut."""
    deadlines = Deadlines(watchdog=False)
    ours, peer = socket.socketpair()
    try:
        with deadlines.watch(ours.fileno(), 5.0, "frozen meanwhile") as call:
            first = deadlines._sweep(time.monotonic())  # the watchdog sleeps until the deadline
            assert first is not None and 4.0 < first <= 5.0
            woke = call.deadline + 30.0  # ... and wakes 30 s late: the process was stopped
            deadlines._sweep(woke)
            assert not call.cut and call.deadline == woke + GRACE
            deadlines._sweep(woke + GRACE)  # on time this time: still no answer
            assert call.cut
        ours.settimeout(5)
        assert ours.recv(1) == b""  # shut down
    finally:
        deadlines.close()
        ours.close()
        peer.close()


def test_a_watchdog_on_time_cuts_at_the_deadline() -> None:
    deadlines = Deadlines(watchdog=False)
    ours, peer = socket.socketpair()
    try:
        with deadlines.watch(ours.fileno(), 5.0, "silent server") as call:
            deadlines._sweep(time.monotonic())
            deadlines._sweep(call.deadline + STALL / 2)  # late by less than a stall
            assert call.cut
    finally:
        deadlines.close()
        ours.close()
        peer.close()
