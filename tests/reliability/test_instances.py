"""Two `mailsms serve` processes on one PostgreSQL, under load, one of them killed with SIGKILL.

Both bridges take mail (a load client each, its own range of mails) and are bound to one
SMSC process that hands every receipt to the bridge that did *not* submit the SMS and
sends MO SMS to the two binds in turn (`smsc_process --spread`). The test proves:

* two bridges started at once on a fresh database migrate it once and both serve;
* every acknowledged mail is stored once with its one order, whichever bridge took it;
* receipts are applied by the bridge that receives them (every one reached the other
  bridge) and every order ends `delivered`;
* each MO is handled once: one inbound row, one SMS2Mail notice, whichever bind got it;
* after `kill -9` of one bridge mid-load, the other finishes the killed one's claimed
  work once its lease runs out: nothing acknowledged is lost, nothing stays open;
* SMS sent twice (the killed bridge had them accepted but not recorded) are at most the
  dispatch concurrency of the one bridge killed: at-least-once, with a bound.

The bridges' settings (`processes.bridge_config`) use a short lease (15 s), so the survivor
takes over soon. Every wait is a condition with a deadline; the kill comes after a number
of 250s.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bridge.sandbox.phone import send_mo
from tests.peers.postgres import DURABLE, throwaway_postgres
from tests.reliability.processes import (
    HOST,
    MAILSMS,
    finish_load_client,
    running_instances,
    start_load_client,
    start_smsc,
    until,
)

pytestmark = pytest.mark.postgres

STEP = 40  # acknowledged mails per client before the kill, and after it
# Mails per client at most: far more than a client sends before the kill, so that the
# survivor's client still has mails to send after it (a fast bridge took 1,000 first).
MAX_MAILS = 20_000
CONCURRENCY = 20  # the dispatch default: orders one bridge has in flight at one time
MOS = 6  # MO SMS sent while both bridges are bound
FIRST = (1, 5_000_001)  # the two clients' first mail numbers (their ranges never meet)


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    return [json.loads(line) for line in lines if line.endswith("\n")]


def _reply(smsc_port: int, phone: str, inbox: Path) -> None:
    """The phone answers the last SMS it received (the demo sender is a long number)."""
    asyncio.run(send_mo(HOST, smsc_port, phone, None, f"answer from {phone}", inbox))


def _open_orders(url: str) -> int:
    return int(rows(url, "SELECT count(*) FROM \"order\" WHERE status != 'delivered'")[0][0])


def test_two_instances_share_the_work_and_survive_a_kill_9(tmp_path: Path) -> None:
    inbox = tmp_path / "phones.jsonl"
    smsc, smsc_port = start_smsc(inbox, tmp_path / "smsc.log", spread=True)
    external = f"external:{smsc_port}"
    try:
        with throwaway_postgres(DURABLE) as url:
            # Two bridges started at once on an empty database: one migrates, the other
            # waits for the lock, both serve; one demo customer.
            with running_instances(tmp_path / "start", url, external, together=True) as pair:
                assert rows(url, "SELECT count(*) FROM alembic_version") == [(1,)]
                assert rows(url, "SELECT count(*) FROM customer") == [(1,)]
                config = str(pair[0].config)
                command = [MAILSMS, "customer", "access", "demo", "--velocity-numbers", "0"]
                subprocess.run([*command, "-c", config], check=True, capture_output=True)
            for bridge in pair:
                assert bridge.proc.popen.returncode == 0, bridge.proc.log_text()[-3000:]

            with running_instances(tmp_path, url, external) as pair:
                procs = [smsc, *(b.proc for b in pair)]
                one, two = (
                    start_load_client(
                        tmp_path,
                        f"client-{i}",
                        [b.smtp_port],
                        FIRST[i - 1],
                        max_mails=MAX_MAILS,
                        give_up=give_up,
                    )
                    for i, b, give_up in ((1, pair[0], 10.0), (2, pair[1], 60.0))
                )
                clients = (one[0], two[0])
                try:
                    until(
                        lambda: one[1].read() >= STEP and two[1].read() >= STEP,
                        90,
                        f"{STEP} mails acknowledged by each bridge",
                        *procs,
                    )
                    # MO while both are bound: replies from phones that got an SMS.
                    until(
                        lambda: len({p["destination"] for p in _jsonl(inbox)}) >= MOS,
                        60,
                        f"{MOS} phones reached",
                        *procs,
                    )
                    phones = sorted({p["destination"] for p in _jsonl(inbox)})[:MOS]
                    for phone in phones:
                        _reply(smsc_port, phone, inbox)
                    # kill -9 of the first bridge mid-load; the second carries on.
                    leased = rows(
                        url,
                        "SELECT count(*) FROM \"order\" WHERE status IN ('queued', 'deferred') "
                        "AND attempts > 0 AND next_attempt_at > now()",
                    )[0][0]
                    pair[0].proc.kill9()
                    summary_one = finish_load_client(tmp_path, one[0])
                    target = two[1].read() + STEP
                    assert target <= MAX_MAILS, "the client ran out of mails before the kill"
                    until(
                        lambda: two[1].read() >= target,
                        90,
                        f"{target} mails acknowledged by the surviving bridge",
                        *procs,
                    )
                    summary_two = finish_load_client(tmp_path, two[0])
                    until(
                        lambda: _open_orders(url) == 0,
                        120,
                        "every order delivered (the survivor took over the killed one's)",
                        *procs,
                    )
                    until(
                        lambda: (
                            rows(url, "SELECT count(*) FROM inbound WHERE status != 'notified'")
                            == [(0,)]
                        ),
                        90,
                        "every MO routed (one claimed by the killed bridge after its 30 s lease)",
                        *procs,
                    )
                finally:
                    for client in clients:
                        if client.alive():
                            client.stop(5)
                assert pair[1].proc.alive(), pair[1].proc.log_text()[-3000:]

            mails = rows(url, "SELECT id, message_id FROM mail WHERE message_id LIKE '<reli%'")
            orders = rows(url, 'SELECT id, mail_id, status FROM "order"')
            inbound = rows(url, "SELECT id, source, status FROM inbound")
            notices = rows(url, "SELECT inbound_id FROM notice WHERE kind = 'sms2mail'")
    finally:
        smsc.stop(5)

    one[1].read()
    two[1].read()
    # The clients: everything the survivor was sent was answered 250; the killed one's
    # client lost at most the mails in flight at the kill (never acknowledged).
    assert summary_two["refused"] == summary_two["failed"] == 0, two[1].refused
    assert summary_two["acked"] == len(two[1].ids) >= 2 * STEP
    assert summary_one["refused"] == 0 and len(one[1].ids) >= STEP
    assert summary_one["failed"] <= 3  # its three connections' mails at the kill

    # Every acknowledged mail stored once, with its queued id and its one order.
    by_message_id = Counter(m[1] for m in mails)
    assert [m for m, n in by_message_id.items() if n > 1] == []
    stored = {str(m[1]): str(m[0]) for m in mails}
    acked = {**one[1].ids, **two[1].ids}
    for i, queued in acked.items():
        assert stored.get(f"<reliability-{i}@client.example>") == queued, (i, queued)
    per_mail = Counter(o[1] for o in orders)
    assert all(per_mail[queued] == 1 for queued in acked.values())
    assert {o[2] for o in orders} == {"delivered"}

    # Every acknowledged SMS reached its phone; sent twice at most CONCURRENCY times.
    phones_got = Counter(p["destination"] for p in _jsonl(inbox) if "eliability" in p["text"])
    wanted = {f"+49170{i % 10_000_000:07d}" for i in acked}
    assert wanted <= set(phones_got)
    twice = sum(n - 1 for number, n in phones_got.items() if number in wanted)
    assert twice <= CONCURRENCY, twice

    # Receipts: each went to the bridge that did not submit the SMS while both were
    # bound, and both bridges applied receipts.
    deliveries = _jsonl(tmp_path / "deliveries.jsonl")
    receipts = [d for d in deliveries if d["kind"] == "receipt" and d["status"] == 0]
    crossed = [d for d in receipts if not d["to_submitter"]]
    assert len({d["bind"] for d in crossed}) == 2, Counter(d["bind"] for d in receipts)

    # MO: each handled once, by whichever bridge got it (both got some).
    mos = [d for d in deliveries if d["kind"] == "mo" and d["status"] == 0]
    assert len(mos) == len(phones) == MOS
    assert len({d["bind"] for d in mos}) == 2
    assert sorted(r[1] for r in inbound) == sorted(phones)
    assert {r[2] for r in inbound} == {"notified"}
    assert sorted(n[0] for n in notices) == sorted(r[0] for r in inbound)

    print(f"claimed and open at the kill: {leased}; sent twice: {twice}")
