"""The order query the report page, the CSV, the REST API and `mailsms report` share, on
SQLite and PostgreSQL: scoped to a customer, keyset pages both ways, one order's detail."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bridge.db.store import Store, run_sync
from bridge.portal.pages.report import csv_lines
from bridge.provision.apply import apply_file
from bridge.provision.file import load_tenants
from bridge.reports import store as sql
from bridge.tenants.admin import add_customer, add_user
from tests.integration.reports_seed import seed

OTHER = """
[[customers]]
name = "other"
[[customers.profiles]]
name = "sales"
[[customers.users]]
address = "zoe@other.example"
profile = "sales"
"""


def _ids(rows: list[dict[str, object]]) -> list[object]:
    return [r["id"] for r in rows]


def test_a_customers_orders_in_pages_either_way(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path)  # acme: M1.1 … M8.1
    acme = run_sync(engine, sql.customer_id, "acme")
    assert acme is not None
    run_sync(engine, add_customer, "empty", {})
    empty = run_sync(engine, sql.customer_id, "empty")
    q = sql.OrderFilter
    everything = _ids(run_sync(engine, sql.query_orders, q(customer_id=acme, newest_first=True)))
    assert len(everything) == 8 and everything[0] == "M7.1"  # November's is the newest
    assert run_sync(engine, sql.query_orders, q(customer_id=empty)) == []
    # pages of three, newest first, then back again
    pages, after = [], None
    while True:
        page = _ids(
            run_sync(
                engine,
                sql.query_orders,
                q(customer_id=acme, newest_first=True, limit=3, after=after),
            )
        )
        if not page:
            break
        pages.append(page)
        after = str(page[-1])
    assert [i for p in pages for i in p] == everything and [len(p) for p in pages] == [3, 3, 2]
    back = _ids(
        run_sync(engine, sql.query_orders, q(customer_id=acme, limit=3, after=str(pages[2][0])))
    )
    assert list(reversed(back)) == pages[1]
    # another customer's scope: a mark of acme's starts at the top (it is not acme's list)
    assert run_sync(engine, sql.query_orders, q(customer_id=empty, after="M1.1")) == []
    # the cost centre is filtered in the query, so a limit counts matching orders only
    rows = run_sync(engine, sql.query_orders, q(customer_id=acme, cost_centre="9000", limit=1))
    assert _ids(rows) == ["M4.1"]


def test_one_orders_detail_belongs_to_its_customer(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path)
    path = tmp_path / "other.toml"
    path.write_text(OTHER, encoding="utf-8")
    apply_file(engine, *load_tenants(path, default_country="DE"), dry_run=False)
    run_sync(engine, add_user, "ann@other.example", "other")
    acme = run_sync(engine, sql.customer_id, "acme")
    other = run_sync(engine, sql.customer_id, "other")
    found = run_sync(engine, sql.order_detail, acme, "M2.1")
    assert found is not None
    [listed] = run_sync(engine, sql.query_orders, sql.OrderFilter(order_id="M2.1"))
    assert {k: v for k, v in found.items() if k not in ("part_states", "history")} == listed
    assert (found["customer"], found["user"], found["profile"], found["status"]) == (
        "acme",
        "anna@acme.example",
        "sales",
        "failed",
    )
    assert [event for _, event, _ in found["history"]] == ["queued"]
    assert found["part_states"] == []
    assert run_sync(engine, sql.order_detail, other, "M2.1") is None
    assert run_sync(engine, sql.order_detail, None, "M2.1") is not None  # an operator
    assert run_sync(engine, sql.order_detail, acme, "M99.1") is None
    # a service of the same name at another customer does not widen acme's report
    rows = run_sync(engine, sql.query_orders, sql.OrderFilter(customer_id=other, profile="sales"))
    assert rows == []


@pytest.mark.parametrize("chunk", [1, 3, 8, 1000])
async def test_the_csv_continues_chunk_after_chunk(
    store: Store, tmp_path: Path, chunk: int
) -> None:
    seed(store.engine, tmp_path)
    acme = run_sync(store.engine, sql.customer_id, "acme")
    query = sql.OrderFilter(customer_id=acme, newest_first=True)
    expected = _ids(run_sync(store.engine, sql.query_orders, query))
    text = "".join([part async for part in csv_lines(store, query, chunk)])
    assert text.startswith("\ufeffcreated_at,id,customer,")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert [r["id"] for r in rows] == expected and len(expected) == 8
