"""The metrics: on the registry they are given, never a global one; customer labels bounded;
the directory several processes count in."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from bridge.metrics import (
    CUSTOMER_NAMES,
    DIRECTORY_PREFIX,
    OTHER,
    MetricFiles,
    Metrics,
    elapsed,
    files_directory,
    process_metrics,
)


def test_metrics_live_on_their_own_registry() -> None:
    one, two = CollectorRegistry(), CollectorRegistry()
    a, b = Metrics.on(one), Metrics.on(two)  # twice: no duplicate-name error
    a.mails_accepted.inc()
    assert one.get_sample_value("mailsms_mails_accepted_total") == 1
    assert two.get_sample_value("mailsms_mails_accepted_total") == 0
    assert b.registry is two
    assert b"mailsms_" not in generate_latest(REGISTRY)


def test_customer_labels_stop_at_the_limit_and_the_rest_count_as_other() -> None:
    m = Metrics.on(CollectorRegistry(), max_customers=2)
    assert [m.customer(n) for n in ("acme", "beta", "acme", "gamma", "delta", "beta")] == [
        "acme",
        "beta",
        "acme",
        OTHER,
        OTHER,
        "beta",
    ]
    none = Metrics.on(CollectorRegistry(), max_customers=0)
    assert none.customer("acme") == OTHER


def test_elapsed_reads_naive_times_as_utc() -> None:
    aware = datetime(2026, 12, 2, 10, 0, 5, tzinfo=UTC)
    assert elapsed(datetime(2026, 12, 2, 10, 0, 0), aware) == 5.0
    assert elapsed(aware, datetime(2026, 12, 2, 10, 0, 0)) == 0.0  # never negative


def test_processes_sharing_the_names_file_name_the_first_customers_any_of_them_saw(
    tmp_path: Path,
) -> None:
    shared = tmp_path / CUSTOMER_NAMES
    one = Metrics.on(CollectorRegistry(), max_customers=2, shared_names=shared)
    two = Metrics.on(CollectorRegistry(), max_customers=2, shared_names=shared)
    assert one.customer("acme") == "acme"
    assert [two.customer(n) for n in ("beta", "gamma", "acme")] == ["beta", OTHER, "acme"]
    assert [one.customer(n) for n in ("gamma", "beta", "delta")] == [OTHER, "beta", OTHER]
    assert shared.read_text(encoding="utf-8").splitlines() == ['"acme"', '"beta"']
    odd = Metrics.on(CollectorRegistry(), max_customers=3, shared_names=tmp_path / "odd")
    assert odd.customer('a "b"\nc') == 'a "b"\nc'  # a name is one JSON line whatever it holds
    assert odd.customer("d") == "d" and odd.customer('a "b"\nc') == 'a "b"\nc'


def test_a_run_gets_a_fresh_directory_and_earlier_runs_left_behind_go(tmp_path: Path) -> None:
    gone = tmp_path / f"{DIRECTORY_PREFIX}{2**22 + 1}-x1"  # above any pid: not running
    gone.mkdir()
    (gone / "counter_1.db").write_bytes(b"\0" * 8)
    running = tmp_path / f"{DIRECTORY_PREFIX}{os.getpid()}-x2"  # another bridge, still running
    running.mkdir()
    other = tmp_path / "unrelated"
    other.mkdir()
    files = MetricFiles.fresh(tmp_path)
    assert files.directory.parent == tmp_path and list(files.directory.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [files.directory.name, running.name, other.name]
    )
    files.remove()
    assert not files.directory.exists()


def test_a_dead_process_keeps_its_counts_and_loses_its_live_gauges(tmp_path: Path) -> None:
    files = MetricFiles(tmp_path)
    for name in ("counter_41.db", "histogram_41.db", "gauge_livesum_41.db", "counter_42.db"):
        (tmp_path / name).write_bytes(b"")
    files.dead(41)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "counter_41.db",
        "counter_42.db",
        "histogram_41.db",
    ]


def test_one_process_counts_in_memory() -> None:
    assert files_directory() is None  # no [server] processes: no files
    registry, metrics = process_metrics(5)
    metrics.mails_accepted.inc()
    assert registry.get_sample_value("mailsms_mails_accepted_total") == 1
    assert metrics.registry is registry


def test_an_unreadable_names_file_costs_labels_not_mails(tmp_path: Path) -> None:
    broken = tmp_path / CUSTOMER_NAMES
    broken.write_text('"acme"\n{not json\n', encoding="utf-8")
    m = Metrics.on(CollectorRegistry(), max_customers=5, shared_names=broken)
    assert [m.customer("acme"), m.customer("beta")] == [OTHER, OTHER]
    gone = Metrics.on(CollectorRegistry(), shared_names=tmp_path / "no" / CUSTOMER_NAMES)
    assert gone.customer("acme") == OTHER
