"""On PostgreSQL the per-key lookups of the hot path read a few rows per key, whatever
plan the server picks and however long the history: the intake's conversation lookup
(`bridge.inbound.store.conversation_senders`, every group commit of mails), the
receipts round's match of new receipts to their parts (`bridge.mt.receipts`) and the
final steps' read of the orders that became final (`bridge.outcomes.final_row`).

PostgreSQL chooses a plan by its cost estimates, and two kinds of plan read the history:
a custom plan that hashes a whole table because the estimates make that look cheaper (the
conversation lookup written as `id IN (SELECT (newest per pair) …)` did with 200 pairs
among 20,000 assignments, the final rows' `order.id IN (…)` the mail table for 200
orders among 20,000 mails), and a generic plan, made once for any parameters after
psycopg has prepared a statement (its fifth run) — one that does not know the receipts
it looks for are the "new" ones scanned every receipt and part (16 ms a round with
20,000 SMS of history, 675 ms with 200,000). Each lookup is run here under both kinds
of plan (`plan_cache_mode`), for 1, 20 and 200 keys, with a history of SMALL and of ten
times as many SMS; the rows its plan's scans read (EXPLAIN ANALYZE's rows, every loop,
with those their filters removed) must not grow with the history.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, Select, text

from bridge.db import prepared
from bridge.db.clock import utcnow
from bridge.db.engine import open_engine, upgrade
from bridge.db.store import run_sync
from bridge.inbound.store import _NEWEST_CONVERSATIONS, newest_conversations_values
from bridge.mt.dispatch_record import Claim, Outcome, OutcomeKind, record_outcomes
from bridge.mt.mails import NewMail, NewOrder, insert_mails
from bridge.mt.receipts import _MATCHED, apply_receipts, insert_receipts
from bridge.outcomes.final_row import FINAL_ROWS_BY_DIALECT
from bridge.outcomes.steps import STEPS
from bridge.tenants.admin import add_customer, add_user
from bridge.values import Receipt, ReceiptState
from tests.conftest import fresh_postgres, shuffle_tables

pytestmark = pytest.mark.postgres

SMALL = 2_000
KEYS = (1, 20, 200)
MODES = ("force_custom_plan", "force_generic_plan")


def _mail(user_id: int, i: int, prefix: str = "M") -> NewMail:
    now = utcnow()
    number = f"+49170{i:07d}"
    return NewMail(
        id=f"{prefix}{i}",
        received_at=now,
        envelope_from="alice@example.com",
        user_id=user_id,
        client_addr="127.0.0.1",
        helo="client",
        message_id=f"<{prefix}{i}@client>",
        subject="Hi",
        raw=b"Subject: Hi\r\n\r\nHello\r\n",
        orders=(
            NewOrder(
                id=f"{prefix}{i}.1",
                recipient=number,
                rcpt_address=f"{number}@eu.rsms.net",
                sender_id="ACME",
                text="Hello",
                encoding="gsm7",
                parts=1,
                priority=0,
                expires_at=now + timedelta(days=2),
                policy={"notify": "failures"},
            ),
        ),
    )


def _sms(engine: Engine, user_id: int, first: int, count: int, prefix: str = "M") -> list[str]:
    """`count` SMS sent (each to a number of its own, which gives a reply assignment) and
    accepted by the SMSC; returns their SMSC ids."""
    ids: list[str] = []
    for k in range(first, first + count, 1000):
        batch = range(k, min(first + count, k + 1000))
        run_sync(engine, insert_mails, [_mail(user_id, i, prefix) for i in batch])
        while claimed := run_sync(engine, record_outcomes, [Claim(1000, 60.0)], steps=STEPS)[0]:
            assert isinstance(claimed, list)
            at = utcnow()
            outcomes = [
                Outcome(o.id, OutcomeKind.SUBMITTED, "smsc", (f"id-{o.id}",), submitted_at=at)
                for o in claimed
            ]
            run_sync(engine, record_outcomes, outcomes, steps=STEPS)
            ids += [o.message_ids[0] for o in outcomes]
    return ids


def _history(engine: Engine, user_id: int, first: int, count: int) -> None:
    """`count` SMS delivered: their parts, receipts (applied) and reply assignments."""
    ids = _sms(engine, user_id, first, count)
    received = [(Receipt("smsc", i, ReceiptState.DELIVERED), utcnow()) for i in ids]
    for k in range(0, len(received), 1000):
        run_sync(engine, insert_receipts, received[k : k + 1000])
    while run_sync(
        engine, apply_receipts, utcnow(), 1000, 3600.0, steps=STEPS, orphan=False
    ).applied:
        pass
    # as autovacuum leaves it: the dead versions of the receipts and parts the history
    # moved on removed (else every scan of the new receipts steps over them once), the
    # rows in no order of time, and the statistics the planner estimates by
    shuffle_tables(engine)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def _scanned(node: dict[str, Any]) -> int:
    """The rows the plan's scans read, every loop: those they returned and those their
    filters removed (a hash join's build side is a scan of the whole table)."""
    own = 0
    if node["Node Type"].endswith("Scan"):
        read = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        own = int(read + node.get("Rows Removed by Index Recheck", 0)) * node["Actual Loops"]
    return own + sum(_scanned(child) for child in node.get("Plans", ()))


def _rows_read(engine: Engine, statement: Select[Any], values: dict[str, Any], mode: str) -> int:
    """The rows the statement's plan reads under `mode` (`_scanned`), prepared as psycopg
    prepares it: `PREPARE`, then `EXPLAIN ANALYZE EXECUTE` with the values."""
    plan = prepared.plan(statement, engine.dialect, tuple(values))
    sql, params = prepared.parameters(plan, values)
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    names: list[str] = []

    def number(found: re.Match[str]) -> str:
        if found.group(1) not in names:
            names.append(found.group(1))
        return f"${names.index(found.group(1)) + 1}"

    numbered = re.sub(r"%\((\w+)\)s", number, sql)
    with psycopg.connect(url) as conn:
        conn.execute(f"SET plan_cache_mode = {mode}")
        conn.execute(f"PREPARE hot AS {numbered}")
        cursor = psycopg.ClientCursor(conn)  # the values written into the EXECUTE
        marks = ", ".join(["%s"] * len(names))
        cursor.execute(
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE hot({marks})",
            [params[n] for n in names],
        )
        row = cursor.fetchone()
        assert row is not None
        doc = row[0] if isinstance(row[0], list) else json.loads(row[0])
        conn.rollback()
    return _scanned(doc[0]["Plan"])


@pytest.fixture
def pg(postgres_server: str) -> Iterator[tuple[Engine, int]]:
    url = fresh_postgres(postgres_server)
    engine = open_engine(url)
    upgrade(engine)
    run_sync(engine, add_customer, "acme", {"default_country": "DE"})
    user_id = run_sync(engine, add_user, "alice@example.com", "acme", settings={})
    yield engine, user_id
    engine.dispose()


def _lookups(engine: Engine, user_id: int) -> dict[str, tuple[Select[Any], dict[str, Any]]]:
    """Each lookup with each number of keys: the conversations of `keys` numbers, what the
    final steps read of `keys` orders, and the match of `keys` new receipts."""
    since = utcnow() - timedelta(days=7)
    asks: dict[str, tuple[Select[Any], dict[str, Any]]] = {}
    for keys in KEYS:
        pairs = [(user_id, f"+49170{i * 7:07d}") for i in range(keys)]
        values = newest_conversations_values("postgresql", pairs, since)
        asks[f"conversations of {keys} numbers"] = (_NEWEST_CONVERSATIONS["postgresql"], values)
    for keys in KEYS:
        values = {"order_ids": [f"M{i * 7}.1" for i in range(keys)]}
        asks[f"final rows of {keys} orders"] = (FINAL_ROWS_BY_DIALECT["postgresql"], values)
    for keys in KEYS:  # `new`: how many new receipts `_measure` puts in before it reads
        asks[f"match of {keys} new receipts"] = (
            _MATCHED["postgresql"],
            {"limit": 500, "since": utcnow() - timedelta(hours=1), "new": keys},
        )
    return asks


def _measure(engine: Engine, user_id: int) -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for name, (statement, values) in _lookups(engine, user_id).items():
        keys = values.pop("new", None)
        if keys is not None:  # this many new receipts, for the P parts submitted first
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM receipt WHERE status = 'new'"))
            receipts = [
                (Receipt("smsc", f"id-P{i}.1", ReceiptState.DELIVERED), utcnow())
                for i in range(keys)
            ]
            run_sync(engine, insert_receipts, receipts)
        for mode in MODES:
            found[(name, mode)] = _rows_read(engine, statement, values, mode)
    return found


def test_the_hot_lookups_read_rows_per_key_not_the_history(pg: tuple[Engine, int]) -> None:
    engine, user_id = pg
    _sms(engine, user_id, 0, max(KEYS), prefix="P")  # the parts the new receipts are for
    _history(engine, user_id, 0, SMALL)
    small = _measure(engine, user_id)
    _history(engine, user_id, SMALL, 9 * SMALL)
    large = _measure(engine, user_id)
    grew = {key: (small[key], large[key]) for key in small if large[key] > 1.2 * small[key] + 10}
    assert not grew, f"rows read with {SMALL:,} and {10 * SMALL:,} SMS of history: {grew}"
