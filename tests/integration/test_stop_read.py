"""The stop-list read the intake makes for every recipient: its answers, freshness and faults."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from bridge.db import engine as engine_module
from bridge.db.engine import open_engine
from bridge.db.store import Store, run_sync
from bridge.errors import StorageUnavailable, StorageUnreachable
from bridge.inbound.actions_store import add_stop, is_stopped
from bridge.tenants.admin import add_customer

NOW = datetime(2026, 1, 1, tzinfo=UTC)
NUMBERS = ("+491701234567", "+491701234568")
SERVICES = ("", "+4915550000001", "ACME")


async def test_every_kind_of_entry_is_answered_as_the_rules_say(
    engine: Engine, store: Store
) -> None:
    acme = run_sync(engine, add_customer, "acme", {})
    globex = run_sync(engine, add_customer, "globex", {})
    # acme: a global stop for the first number, a service stop for the second;
    # every customer (0): the first number for the ACME service only
    entries = [
        (acme, NUMBERS[0], ""),
        (acme, NUMBERS[1], "+4915550000001"),
        (0, NUMBERS[0], "ACME"),
    ]
    for customer, number, service in entries:
        assert run_sync(engine, add_stop, customer, number, service, NOW, "cli")
    for customer, number, services in itertools.product(
        (acme, globex), NUMBERS, [(), ("",), ("ACME",), ("+4915550000001",), ("X", "ACME")]
    ):
        want = any(
            c in (customer, 0) and n == number and s in ("", *(services or ("",)))
            for c, n, s in entries
        )
        assert await store.read(is_stopped, customer, number, services) == want
        spelled = "00" + number[1:]
        assert await store.read(is_stopped, customer, spelled, services) == want


async def test_an_entry_another_process_adds_counts_at_the_next_read(
    database_url: str, store: Store
) -> None:
    other = open_engine(database_url)  # the CLI, or another bridge process
    try:
        acme = run_sync(other, add_customer, "acme", {})
        assert not await store.read(is_stopped, acme, NUMBERS[0], ("ACME",))
        run_sync(other, add_stop, acme, NUMBERS[0], "", NOW, "cli")
        assert await store.read(is_stopped, acme, NUMBERS[0], ("ACME",))
    finally:
        other.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_database_fault_is_a_storage_fault_not_a_crash(
    engine: Engine, store: Store
) -> None:
    acme = run_sync(engine, add_customer, "acme", {})
    assert not await store.read(is_stopped, acme, NUMBERS[0], ("ACME",))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE stop_entry"))
    with pytest.raises(StorageUnavailable) as raised:
        await store.read(is_stopped, acme, NUMBERS[0], ("ACME",))
    assert isinstance(raised.value, StorageUnreachable)  # as SQLAlchemy's OperationalError was
    assert "no such table" in str(raised.value)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_answers_from_one_search_of_the_number_index(
    engine: Engine, store: Store
) -> None:
    """The number's entries of every customer are read, and only the matching one counts."""
    from bridge.inbound.actions_store import _IS_STOPPED

    with engine.connect() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + _IS_STOPPED["sqlite"], (NUMBERS[0], 1, "ACME")
        ).fetchall()
    assert [row[3] for row in plan] == [
        "SEARCH stop_entry USING INDEX ix_stop_entry_msisdn (msisdn=?)"
    ]
    customers = [run_sync(engine, add_customer, f"c{n}", {}) for n in range(12)]
    for n, customer in enumerate(customers[1:]):  # the number stopped elsewhere, many ways
        service = ("", "ACME", "+4915550000001")[n % 3]
        assert run_sync(engine, add_stop, customer, NUMBERS[0], service, NOW, "cli")
    mine = customers[0]
    assert not await store.read(is_stopped, mine, NUMBERS[0], ("ACME",))
    assert run_sync(engine, add_stop, mine, NUMBERS[0], "+4915550000001", NOW, "cli")
    assert not await store.read(is_stopped, mine, NUMBERS[0], ("ACME",))
    assert await store.read(is_stopped, mine, NUMBERS[0], ("+4915550000001",))
    assert await store.read(is_stopped, customers[1], NUMBERS[0], ("X",))  # its "" entry
    assert not await store.read(is_stopped, customers[2], NUMBERS[0], ("X",))
    assert not await store.read(is_stopped, mine, NUMBERS[1], ("+4915550000001",))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_lost_connection_is_unreachable_and_every_dead_one_dropped(
    database_url: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read runs on the driver's cursor; a connection cut off (a failover) fails that
    read retryably and is not used again, nor any other pooled connection older than it."""
    monkeypatch.setattr(engine_module, "PING_IDLE", 60.0)  # handed out without a ping

    def held(conn: Connection) -> int:
        pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        time.sleep(0.2)  # the others are taken meanwhile: a connection each
        return pid

    pids = set(await asyncio.gather(*(store.call(held) for _ in range(3))))
    assert len(pids) == 3
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for pid in pids:
                assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})").scalar_one()
    finally:
        admin.dispose()
    with pytest.raises(StorageUnreachable):
        await store.read(is_stopped, 1, NUMBERS[0], ("ACME",))
    for _ in range(4):
        assert not await store.read(is_stopped, 1, NUMBERS[0], ("ACME",))
