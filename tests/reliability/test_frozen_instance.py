"""Two `mailsms serve` processes on one PostgreSQL, under load, one of them FROZEN (SIGSTOP)
for longer than the order lease and then resumed (SIGCONT): a paused virtual machine, a
host stalled in swap.

Worse than `kill -9`: while frozen the instance keeps its TCP connections (its kernel
answers for it), so PostgreSQL keeps its open transaction — the claim's row locks, the
duplicate check's advisory locks — and when it wakes it carries on where it stopped,
with an old view of the world. The test freezes the first bridge at a moment one of its
database sessions is inside a transaction (tried again until one is: the SIGSTOP lands
at random, so the test looks at pg_stat_activity after each), keeps it frozen longer
than the lease (9 s, the shortest for a 2 s response_timeout) and its database_timeout
(8 s), then lets it run on. Its load client is an MTA with two MX hosts: a mail that
gets no answer goes to the other bridge. It proves:

* the frozen transactions (every one the frozen bridge has open, also one whose
  statement was running at the stop and that stopped after it) are ended within
  database_timeout, not held until the instance wakes: by the server
  (`idle_in_transaction_session_timeout`) when the freeze finds one between two
  statements, by the other bridge (`bridge/db/stalled.py`) when it finds one where the
  server runs no idle timer: in the middle of a batch (psycopg's pipeline), or just
  after one whose end a flush request followed (the states the freeze found are
  printed);
* the other bridge took and sent mail all along: its own client's mails and the frozen
  one's client's retries were answered 250 during the freeze, and the longest pause in
  its answers is measured;
* every mail answered 250 by either bridge has its one order, delivered, and reached
  its phone; SMS sent twice are only those the frozen bridge had at the SMSC, unanswered,
  when it stopped (the other took them over after the lease), at most its dispatch
  concurrency;
* after it wakes, the frozen bridge sends none of the orders the other took over (the
  claim's send-by time): no phone gets a second copy after the resume; its own SMTP
  sessions, database connections and SMPP bind recover (it answers 250 again).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bridge.db.stalled import IDLE_GRACE
from tests.peers.postgres import DURABLE, throwaway_postgres
from tests.reliability.processes import (
    MAILSMS,
    Instance,
    Timing,
    finish_load_client,
    running_instances,
    start_load_client,
    start_smsc,
    until,
)

pytestmark = pytest.mark.postgres

STEP = 20  # acknowledged mails per client before the freeze, and after it
CONCURRENCY = 20  # the dispatch default: orders one bridge has in flight at one time
FIRST = (1, 5_000_001)  # the two clients' first mail numbers
# Mails per client at most: far more than a client sends in the test (the other bridge's
# client, unhindered by the freeze, sent 2,000 before the resume on a fast machine).
MAX_MAILS = 20_000
# The shortest lease a 2 s response_timeout allows (2 x 2 + 5 s); database calls and a
# transaction's idle time bounded by 8 s; the freeze outlasts both.
DATABASE_TIMEOUT = 8.0
TIMING = Timing(lease=9.0, response_timeout=2.0, database_timeout=DATABASE_TIMEOUT)
FREEZE = 22.0


def rows(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    return [json.loads(line) for line in lines if line.endswith("\n")]


def _in_transaction(url: str, name: str) -> list[tuple[Any, ...]]:
    """The sessions of bridge `name` inside a transaction and waiting for it: for its next
    statement, or in the middle of a batch for the rest of it (`active`, waiting on the
    client); with their state and last statement."""
    return rows(
        url,
        "SELECT pid, state, left(query, 80) FROM pg_stat_activity "
        "WHERE application_name = :name AND (state LIKE 'idle in transaction%' "
        "OR (state = 'active' AND wait_event_type = 'Client'))",
        name=name,
    )


def _freeze_inside_a_transaction(url: str, bridge: Instance) -> list[tuple[Any, ...]]:
    """SIGSTOP `bridge` at a moment one of its sessions has a transaction open; returns
    those sessions. Tried again (SIGCONT, a pause, SIGSTOP) until one lands there."""
    pid = bridge.proc.popen.pid
    for _ in range(200):
        os.kill(pid, signal.SIGSTOP)
        # a statement sent just before the stop ends on the server meanwhile
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            held = _in_transaction(url, bridge.name)
            if held:
                return held
            time.sleep(0.05)
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.1)
    raise AssertionError("the freeze never landed inside a transaction in 200 tries")


def _open(url: str, name: str) -> list[tuple[Any, ...]]:
    """Every session of bridge `name` inside a transaction (not `idle`): those the freeze
    found waiting, and any that was running a statement then and stopped after it."""
    return rows(
        url,
        "SELECT pid, state, wait_event, left(query, 80) FROM pg_stat_activity "
        "WHERE application_name = :name AND state != 'idle'",
        name=name,
    )


def _ended(url: str, name: str, by: float) -> tuple[float | None, list[tuple[Any, ...]]]:
    """When no session of bridge `name` was inside a transaction any more (Unix time),
    polled until `by` (None if one still was, with those sessions)."""
    while still := _open(url, name):
        if time.time() > by:
            return None, still
        time.sleep(0.05)
    return time.time(), []


def _longest_pause(times: list[float], start: float, end: float) -> float:
    """The longest time between `start` and `end` without an answer 250."""
    marks = [start, *sorted(t for t in times if start < t < end), end]
    return max(b - a for a, b in itertools.pairwise(marks))


def _open_orders(url: str) -> int:
    return int(rows(url, "SELECT count(*) FROM \"order\" WHERE status != 'delivered'")[0][0])


def test_an_instance_frozen_past_its_lease_holds_nothing_and_sends_nothing_twice_after(
    tmp_path: Path,
) -> None:
    inbox = tmp_path / "phones.jsonl"
    smsc, smsc_port = start_smsc(inbox, tmp_path / "smsc.log")
    external = f"external:{smsc_port}"
    try:
        with throwaway_postgres(DURABLE) as url:
            with running_instances(tmp_path / "first", url, external, count=1) as (first,):
                command = [MAILSMS, "customer", "access", "demo", "--velocity-numbers", "0"]
                subprocess.run([*command, "-c", str(first.config)], check=True, timeout=60)

            with running_instances(tmp_path, url, external, timing=TIMING) as (a, b):
                procs = [smsc, a.proc, b.proc]
                # A's client is an MTA with two MX hosts (A first); B's sends to B only.
                one = start_load_client(
                    tmp_path, "client-1", [a.smtp_port, b.smtp_port], FIRST[0], max_mails=MAX_MAILS
                )
                two = start_load_client(
                    tmp_path, "client-2", [b.smtp_port], FIRST[1], max_mails=MAX_MAILS
                )
                try:
                    until(
                        lambda: one[1].read() >= STEP and two[1].read() >= STEP,
                        60,
                        f"{STEP} mails acknowledged by each client",
                        *procs,
                    )
                    held = _freeze_inside_a_transaction(url, a)
                    frozen_at = time.time()
                    released, still = _ended(url, a.name, frozen_at + FREEZE - 1)
                    time.sleep(max(0.0, frozen_at + FREEZE - time.time()))
                    os.kill(a.proc.popen.pid, signal.SIGCONT)
                    resumed_at = time.time()
                    one[1].read()
                    two[1].read()
                    # After the resume: each client gets STEP more 250s, A's client from A.
                    target = (len(one[1].ids) + STEP, len(two[1].ids) + STEP)
                    until(
                        lambda: one[1].read() >= target[0] and two[1].read() >= target[1],
                        60,
                        f"{STEP} more mails acknowledged by each client after the resume",
                        *procs,
                    )
                    until(
                        lambda: any(
                            r.get("port") == a.smtp_port and r["t"] > resumed_at and "id" in r
                            for r in _jsonl(one[1].path)
                        ),
                        30,
                        "a mail acknowledged by the resumed bridge",
                        *procs,
                    )
                    summaries = [
                        finish_load_client(tmp_path, one[0]),
                        finish_load_client(tmp_path, two[0]),
                    ]
                    until(
                        lambda: _open_orders(url) == 0,
                        60,
                        "every order delivered",
                        *procs,
                    )
                finally:
                    os.kill(a.proc.popen.pid, signal.SIGCONT)  # never left frozen
                    for client in (one[0], two[0]):
                        if client.alive():
                            client.stop(5)
                assert a.proc.alive() and b.proc.alive()
                log_a = a.proc.log_text()
                log_b = b.proc.log_text()
            mails = rows(url, "SELECT id, message_id FROM mail")
            orders = rows(url, 'SELECT mail_id, status FROM "order"')
    finally:
        smsc.stop(5)

    # Nothing acknowledged lost, nothing refused or given up.
    acked: dict[int, str] = {}
    for (_, acks), summary in zip((one, two), summaries, strict=True):
        acks.read()
        assert summary["refused"] == summary["failed"] == 0, acks.refused
        acked.update(acks.ids)
    stored = {str(m[1]): str(m[0]) for m in mails}
    assert len(stored) == len(mails)  # no mail stored twice
    for i, queued in acked.items():
        assert stored.get(f"<reliability-{i}@client.example>") == queued, (i, queued)
    per_mail = Counter(o[0] for o in orders)
    assert all(per_mail[queued] == 1 for queued in acked.values())
    assert {o[1] for o in orders} == {"delivered"}

    # The frozen transactions ended within database_timeout (+ the server's own tick, or
    # the other bridge's grace for an idle session and its step, 1 s; and the time the
    # machine's load adds to those), not at the resume.
    assert released is not None, f"held until the resume: {still} (frozen in {held})"
    bound = DATABASE_TIMEOUT + IDLE_GRACE + 4
    assert released - frozen_at < bound, (released - frozen_at, held)
    # one frozen in the middle of a batch was ended by the other bridge, which says so
    for pid, state, _ in held:
        if state == "active":
            assert f"ended database session {pid} (bridge-1," in log_b, (pid, held)

    # B answered 250 all through the freeze: its own client's mails, and the frozen one's
    # client's mails sent to it instead.
    records = [*_jsonl(one[1].path), *_jsonl(two[1].path)]
    by_b = [r["t"] for r in records if "id" in r and r.get("port") == b.smtp_port]
    pause = _longest_pause(by_b, frozen_at, resumed_at)
    moved = [r for r in _jsonl(one[1].path) if "id" in r and r.get("port") == b.smtp_port]
    assert pause < 6.0, pause  # at most a lock_timeout (5 s) for a copy of a held mail
    assert any(frozen_at < r["t"] < resumed_at for r in moved)

    # Every acknowledged SMS reached its phone. Twice: only orders A had at the SMSC,
    # unanswered, when it froze (B sent them again after the lease).
    sent = _jsonl(inbox)
    phones = Counter(p["destination"] for p in sent)
    wanted = {f"+49170{i % 10_000_000:07d}" for i in acked}
    assert wanted <= set(phones)
    twice = sum(n - 1 for number, n in phones.items() if number in wanted)
    assert twice <= CONCURRENCY, twice
    # Nothing sent again after A woke: a second copy of a phone's SMS, if any, reached
    # the SMSC while A was frozen (B's takeover), none after it.
    first_seen: dict[str, float] = {}
    late: list[str] = []
    for p in sent:
        at = datetime.fromisoformat(p["time"]).timestamp()
        if p["destination"] in first_seen and at > resumed_at:
            late.append(p["destination"])
        first_seen.setdefault(p["destination"], at)
    assert late == [], late
    cut_short = log_a.count("its claim would run out") + log_a.count("its claim ends in")
    print(
        f"frozen in: {held}; transaction ended after {released - frozen_at:.1f} s; "
        f"B's longest pause: {pause:.1f} s; client-1's mails answered by B: {len(moved)}; "
        f"sent twice: {twice}; A's sends cut short by the claim's end: {cut_short}"
    )
