"""Reports on a seeded database (SQLite and PostgreSQL): filters, CSV, monthly counts, purge."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, text

from bridge.db.store import run_sync
from bridge.reports import store as sql
from bridge.reports.monthly_run import monthly_due
from bridge.reports.order_report import month_bounds, months_before, previous_month, to_csv
from tests.integration.reports_seed import seed


def _ids(rows: list[dict[str, object]]) -> list[object]:
    return [r["id"] for r in rows]


def test_order_filters(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path)
    start, end = month_bounds("2026-10")
    q = sql.OrderFilter
    assert _ids(run_sync(engine, sql.query_orders, q(since=start, until=end, status="failed"))) == [
        "M2.1",
        "M5.1",
    ]
    assert _ids(run_sync(engine, sql.query_orders, q(profile="sap"))) == ["M4.1", "M5.1"]
    assert _ids(run_sync(engine, sql.query_orders, q(user="Carl@acme.example"))) == [
        "M6.1",
        "M8.1",
        "M7.1",
    ]
    assert _ids(run_sync(engine, sql.query_orders, q(cost_centre="4711"))) == [
        "M1.1",
        "M2.1",
        "M3.1",
    ]
    assert _ids(run_sync(engine, sql.query_orders, q(recipient="+491701111104"))) == ["M4.1"]
    rows = run_sync(engine, sql.query_orders, q(status="failed", since=start, until=end))
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert [(r["id"], r["status"], r["profile"], r["cost_centre"]) for r in parsed] == [
        ("M2.1", "failed", "sales", "4711"),
        ("M5.1", "failed", "sap", "9000"),
    ]


def test_monthly_counts_by_service_cost_centre_and_user(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path)
    cid = run_sync(engine, sql.customer_id, "acme")
    assert cid is not None
    start, end = month_bounds("2026-10")
    rows = {
        (r["service"], r["cost_centre"], r["user"]): (
            r["orders"],
            r["sent"],
            r["parts"],
            r["failed"],
            r["received"],
        )
        for r in run_sync(engine, sql.monthly_rows, cid, start, end)
    }
    assert rows == {
        ("sales", "4711", "anna@acme.example"): (3, 2, 4, 1, 1),
        ("sap", "9000", "bob@acme.example"): (2, 1, 2, 2, 0),
        ("", "", "carl@acme.example"): (2, 0, 0, 1, 0),
    }


def test_monthly_run_archives_mails_once_and_keeps_six_months(
    engine: Engine, tmp_path: Path
) -> None:
    seed(engine, tmp_path)
    now = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
    assert previous_month(now) == "2026-10" and months_before("2026-10", 5) == "2026-05"
    assert run_sync(engine, monthly_due, now, ("ops@bridge.example",), 6) == 2
    assert run_sync(engine, monthly_due, now, ("ops@bridge.example",), 6) == 0  # archived
    cid = run_sync(engine, sql.customer_id, "acme")
    assert cid is not None
    report = run_sync(engine, sql.get_monthly, cid, "2026-10")
    assert report is not None and report["summary"]["total"]["sent"] == 3
    assert (
        report["csv"].splitlines()[0]
        == "service,cost_centre,user,orders,sent,parts,failed,received"
    )
    with engine.connect() as conn:
        recipients = sorted(
            r[0]
            for r in conn.execute(
                text("SELECT recipient FROM notice WHERE kind = 'monthly_report'")
            )
        )
    assert recipients == ["acme-boss@acme.example", "ops@bridge.example"]
    run_sync(engine, sql.save_monthly, cid, "2026-03", {}, "", now)
    run_sync(engine, monthly_due, now, (), 6)
    assert run_sync(engine, sql.get_monthly, cid, "2026-03") is None


def test_purge_removes_texts_first_then_old_orders(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path)
    now = datetime(2026, 11, 20, tzinfo=UTC)
    dry = run_sync(engine, sql.purge, now, 92, 30, True)
    assert dry == {"texts": 6, "orders": 0, "mails": 0, "receipts": 0}
    assert run_sync(engine, sql.purge, now, 92, 30) == dry
    with engine.connect() as conn:
        texts: dict[str, str] = dict(conn.execute(text('SELECT id, text FROM "order"')).all())
    assert texts["M1.1"] == "" and texts["M8.1"] == "text 8"  # queued: kept
    later = datetime(2027, 2, 1, tzinfo=UTC)
    counts = run_sync(engine, sql.purge, later, 92)
    assert counts["orders"] == 6 and counts["mails"] == 6
    with engine.connect() as conn:
        left = sorted(r[0] for r in conn.execute(text('SELECT id FROM "order"')))
    assert left == ["M7.1", "M8.1"]
