"""kill -9 under load: no acknowledged mail lost, no order stuck, duplicates bounded.

A load client (its own process) sends mails without pause while the bridge (`mailsms
serve` on SQLite, its own process) is killed with SIGKILL and started again, KILLS times;
the SMSC is a process of its own too, so it outlives the bridge as a real one does. After
a last, clean restart has worked off the queue and stopped, the database, the SMSC's
inbox and the client's record of 250 answers must agree:

* every mail answered 250 is in the database with its queued id and its one order;
* the client's repeats of mails whose 250 was lost created no second mail (dedupe);
* every order is delivered (nothing stuck in a lease, held, or waiting), and every
  acknowledged SMS reached the phone at least once;
* SMS sent twice (accepted by the SMSC, the bridge killed before it recorded that) are
  at most KILLS x dispatch concurrency: at-least-once, with a bound.

The assertions do not depend on timing: kills happen after a number of further 250s,
and every wait is a condition with a deadline.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.peers.net import free_port
from tests.reliability.processes import (
    MAILSMS,
    Acks,
    Proc,
    bridge_config,
    spawn,
    start_bridge,
    start_smsc,
    wait_smtp_ready,
)

KILLS = 5
STEP = 30  # further acknowledged mails before each kill
CONCURRENCY = 20  # the dispatch default: orders in flight at one time
CLIENT_CONNECTIONS = 4


def _until(predicate: Callable[[], Any], within: float, what: str, *procs: Proc) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}:\n{p.log_text()[-3000:]}" for p in procs)
            raise AssertionError(f"not within {within} s: {what}\n{logs}")
        time.sleep(0.05)


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def _open_orders(db: Path) -> int:
    return int(_rows(db, "SELECT count(*) FROM \"order\" WHERE status != 'delivered'")[0][0])


def _run_under_load(config: Path, port: int, acks: Acks, log: Path) -> Proc:
    """Start the bridge and let it answer STEP more mails with 250."""
    bridge = start_bridge(config, log)
    wait_smtp_ready(bridge, port)
    target = acks.read() + STEP
    _until(lambda: acks.read() >= target, 60, f"{target} mails acknowledged", bridge)
    return bridge


def _allow_sequential_numbers(config: Path, port: int, log: Path) -> None:
    """A first clean run creates the demo tenant; the load writes to consecutive numbers,
    which the SMS pumping protection would hold (this test is about durability)."""
    bridge = start_bridge(config, log)
    try:
        wait_smtp_ready(bridge, port)
        command = [MAILSMS, "customer", "access", "demo", "--velocity-numbers", "0"]
        subprocess.run([*command, "-c", str(config)], check=True, capture_output=True, timeout=60)
    finally:
        assert bridge.stop() == 0, bridge.log_text()[-3000:]


def test_kill_9_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    smsc, smsc_port = start_smsc(tmp_path / "phones.jsonl", tmp_path / "smsc.log")
    smtp_port = free_port()
    config = bridge_config(tmp_path, smtp_port, f"external:{smsc_port}")
    _allow_sequential_numbers(config, smtp_port, tmp_path / "bridge.log")
    acks = Acks(tmp_path / "acks.jsonl")
    stop_file = tmp_path / "stop"
    client = spawn(
        "client",
        [
            sys.executable, "-m", "tests.reliability.load_client", "--port", str(smtp_port),
            "--acks", str(acks.path), "--conc", str(CLIENT_CONNECTIONS), "--max-mails", "1000",
            "--duration", "150", "--give-up", "60", "--stop-file", str(stop_file),
        ],
        tmp_path / "client.log",
        stdout_pipe=True,
    )  # fmt: skip
    bridge: Proc | None = None
    try:
        for _ in range(KILLS):
            bridge = _run_under_load(config, smtp_port, acks, tmp_path / "bridge.log")
            bridge.kill9()
        # The last run: a clean start works off what the kills left, then a clean stop.
        bridge = _run_under_load(config, smtp_port, acks, tmp_path / "bridge.log")
        stop_file.touch()
        out, _ = client.popen.communicate(timeout=90)
        summary = json.loads(out.decode().strip().splitlines()[-1])
        db = tmp_path / "bridge.db"
        _until(lambda: _open_orders(db) == 0, 60, "every order delivered", bridge, smsc)
        assert bridge.stop() == 0, bridge.log_text()[-3000:]
    finally:
        for proc in (client, bridge, smsc):
            if proc is not None and proc.alive():
                proc.stop(5)

    acks.read()
    # The client: every mail it started was answered 250 (nothing refused or given up).
    assert summary["refused"] == summary["failed"] == 0, acks.refused
    assert summary["acked"] == summary["started"] == len(acks.ids) >= (KILLS + 1) * STEP
    assert summary["retries"] > 0  # the kills did break connections in the middle of mails

    db = tmp_path / "bridge.db"
    mails = _rows(db, "SELECT id, message_id FROM mail WHERE message_id LIKE '<reliability-%'")
    by_message_id = Counter(m[1] for m in mails)
    assert [m for m, n in by_message_id.items() if n > 1] == []  # no mail stored twice
    stored = {str(m[1]): str(m[0]) for m in mails}
    for i, queued in acks.ids.items():
        assert stored.get(f"<reliability-{i}@client.example>") == queued, (i, queued)
    orders = _rows(db, 'SELECT mail_id, recipient, status FROM "order"')
    per_mail = Counter(o[0] for o in orders)
    assert all(per_mail[queued] == 1 for queued in acks.ids.values())
    assert {o[2] for o in orders} == {"delivered"}
    assert _rows(db, "SELECT count(*) FROM notice WHERE status = 'held'") == [(0,)]

    phones = Counter(
        json.loads(line)["destination"]
        for line in (tmp_path / "phones.jsonl").read_text().splitlines()
    )
    wanted = {f"+49170{i:07d}" for i in acks.ids}
    assert wanted <= set(phones)  # every acknowledged SMS reached its phone
    twice = sum(n - 1 for number, n in phones.items() if number in wanted)
    assert twice <= KILLS * CONCURRENCY, twice
