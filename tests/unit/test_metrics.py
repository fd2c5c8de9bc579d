"""The metrics: on the registry they are given, never a global one; customer labels bounded."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from bridge.metrics import OTHER, Metrics, elapsed


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
