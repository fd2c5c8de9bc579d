"""A second data centre: the PostgreSQL primary is lost under load, its standby promoted.

Two bridges (`mailsms serve`, one per "site") share a PostgreSQL primary that streams to a
synchronous standby (`synchronous_standby_names`, `synchronous_commit=on`: a commit
returns only once the standby has it). Their `database_url` lists both servers with
`target_session_attrs=read-write`, so a new connection finds whichever takes writes.
A load client per bridge sends mail without pause; the primary is killed (SIGKILL, its
site lost) and the standby promoted. While no server takes writes the bridges answer
4xx and the clients retry; afterwards the bridges reconnect by themselves and go on:

* every mail answered 250, before or after the failover, is on the promoted server with
  its order, and every order is delivered (nothing acknowledged lost, nothing stuck);
* every acknowledged SMS reached its phone; SMS sent twice (accepted by the SMSC while
  the bridge could not record it) are bounded by both bridges' dispatch concurrency.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.peers.postgres import DURABLE, replicated_postgres
from tests.reliability.processes import (
    MAILSMS,
    finish_load_client,
    running_instances,
    start_load_client,
    start_smsc,
    until,
)

pytestmark = pytest.mark.postgres

STEP = 30  # acknowledged mails per client before the failover, and after it
CONCURRENCY = 20  # the dispatch default: orders one bridge has in flight at one time
FIRST = (1, 5_000_001)  # the two clients' first mail numbers


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def _phones(inbox: Path) -> Counter[str]:
    lines = inbox.read_text(encoding="utf-8").splitlines() if inbox.exists() else []
    return Counter(json.loads(line)["destination"] for line in lines)


def test_bridges_follow_a_promoted_standby_and_lose_no_acknowledged_mail(tmp_path: Path) -> None:
    inbox = tmp_path / "phones.jsonl"
    smsc, smsc_port = start_smsc(inbox, tmp_path / "smsc.log")
    external = f"external:{smsc_port}"
    try:
        with replicated_postgres(DURABLE, synchronous=True) as pg:
            url = pg.url()  # both servers, the one taking writes chosen at connect
            with running_instances(tmp_path / "first", url, external, count=1) as (first,):
                command = [MAILSMS, "customer", "access", "demo", "--velocity-numbers", "0"]
                subprocess.run([*command, "-c", str(first.config)], check=True, timeout=60)

            with running_instances(tmp_path, url, external) as pair:
                procs = [smsc, *(b.proc for b in pair)]
                clients = [
                    start_load_client(
                        tmp_path,
                        f"client-{i}",
                        [b.smtp_port],
                        FIRST[i - 1],
                        max_mails=1000,
                        duration=180,
                    )
                    for i, b in enumerate(pair, 1)
                ]
                try:
                    until(
                        lambda: all(acks.read() >= STEP for _, acks in clients),
                        90,
                        f"{STEP} mails acknowledged by each bridge",
                        *procs,
                    )
                    pg.kill_primary()
                    pg.promote()
                    targets = [acks.read() + STEP for _, acks in clients]
                    until(
                        lambda: all(
                            acks.read() >= n for (_, acks), n in zip(clients, targets, strict=True)
                        ),
                        120,
                        f"{STEP} more mails acknowledged by each bridge after the promotion",
                        *procs,
                    )
                    summaries = [finish_load_client(tmp_path, proc, 150) for proc, _ in clients]
                    promoted = pg.standby.url()
                    until(
                        lambda: (
                            rows(
                                promoted,
                                "SELECT count(*) FROM \"order\" WHERE status != 'delivered'",
                            )
                            == [(0,)]
                        ),
                        120,
                        "every order delivered",
                        *procs,
                    )
                finally:
                    for proc, _ in clients:
                        if proc.alive():
                            proc.stop(5)
                assert all(b.proc.alive() for b in pair)
                reconnected = [
                    "storage unavailable" in b.proc.log_text()
                    or "Temporary storage failure" in b.proc.log_text()
                    for b in pair
                ]
            mails = rows(promoted, "SELECT id, message_id FROM mail")
            orders = rows(promoted, 'SELECT mail_id, status FROM "order"')
    finally:
        smsc.stop(5)

    acked: dict[int, str] = {}
    for (_, acks), summary in zip(clients, summaries, strict=True):
        acks.read()
        assert summary["refused"] == summary["failed"] == 0, acks.refused
        assert summary["acked"] == len(acks.ids) >= 2 * STEP
        acked.update(acks.ids)
    assert all(reconnected)  # both lost the database for a while, and carried on

    stored = {str(m[1]): str(m[0]) for m in mails}
    assert len(stored) == len(mails)  # no mail stored twice
    for i, queued in acked.items():
        assert stored.get(f"<reliability-{i}@client.example>") == queued, (i, queued)
    per_mail = Counter(o[0] for o in orders)
    assert all(per_mail[queued] == 1 for queued in acked.values())
    assert {o[1] for o in orders} == {"delivered"}

    phones = _phones(inbox)
    wanted = {f"+49170{i % 10_000_000:07d}" for i in acked}
    assert wanted <= set(phones)
    twice = sum(n - 1 for number, n in phones.items() if number in wanted)
    assert twice <= 2 * CONCURRENCY, twice
    retries = [s["retries"] for s in summaries]
    print(f"sent twice: {twice}; client retries: {retries}")
