"""`/metrics`: what is counted (`bridge.metrics`), plus what is read at scrape time.

What is counted comes from this process's memory or, with `[server] processes = N`, from
every process's files, summed (the registry `bridge.metrics.process_metrics` gives).

At scrape time, and only then: the queue depths by queue and status, the age of the
oldest due order and each customer's last dirsync run come from a few indexed queries
in one transaction (`read_snapshot`, with a timeout: a slow database gives the previous
figures and `mailsms_scrape_ok 0`, not a hanging scrape); the SMPP binds' state, window
and counters are read from the transports' memory (`SmppCollector`). Both run in the
process that serves HTTP (the first), so they stay out of the files: nothing to sum.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, func, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.store import Store
from bridge.inbound.status import InboundStatus
from bridge.inbound.tables import Inbound
from bridge.mt.status import OrderStatus
from bridge.mt.tables import Order
from bridge.notices.status import NoticeStatus
from bridge.notices.tables import Notice
from bridge.push.delivery_status import OPEN_PUSH_STATUSES
from bridge.push.tables import PushDelivery
from bridge.tenants.directory_tables import SyncRun
from bridge.transports.smpp import SmppTransport

log = logging.getLogger("bridge.http")

# The statuses in which a row is still in its queue (final ones are history, not queue).
QUEUES: dict[str, tuple[Any, tuple[str, ...]]] = {
    "orders": (
        table(Order),
        (OrderStatus.QUEUED, OrderStatus.DEFERRED, OrderStatus.SUBMITTED, OrderStatus.HELD),
    ),
    "notices": (table(Notice), (NoticeStatus.QUEUED, NoticeStatus.DEFERRED, NoticeStatus.HELD)),
    "push": (table(PushDelivery), OPEN_PUSH_STATUSES),
    "inbound": (table(Inbound), (InboundStatus.RECEIVED, InboundStatus.HELD)),
}
DIRSYNC_OK = ("applied", "unchanged", "dry_run")
_order = table(Order)
_sync = table(SyncRun)


@dataclass(frozen=True, slots=True)
class DirsyncRun:
    customer: str
    status: str
    finished_at: datetime
    counts: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the database said at one scrape."""

    depths: dict[tuple[str, str], int] = field(default_factory=dict)
    oldest_due: float = 0.0  # seconds the oldest due order has waited (0: none waits)
    dirsync: tuple[DirsyncRun, ...] = ()


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def read_snapshot(conn: Connection, now: datetime) -> Snapshot:
    """The queue depths, the oldest due order and the last dirsync runs (indexed reads)."""
    depths: dict[tuple[str, str], int] = {}
    for queue, (tbl, statuses) in QUEUES.items():
        depths.update({(queue, str(s)): 0 for s in statuses})
        rows = conn.execute(
            select(tbl.c.status, func.count())
            .where(tbl.c.status.in_([str(s) for s in statuses]))
            .group_by(tbl.c.status)
        )
        depths.update({(queue, str(status)): int(n) for status, n in rows})
    oldest = conn.execute(
        select(func.min(_order.c.next_attempt_at)).where(
            _order.c.status.in_([OrderStatus.QUEUED, OrderStatus.DEFERRED]),
            _order.c.next_attempt_at <= now,
        )
    ).scalar()
    latest = select(func.max(_sync.c.id)).group_by(_sync.c.customer)
    runs = conn.execute(
        select(_sync.c.customer, _sync.c.status, _sync.c.finished_at, _sync.c.counts).where(
            _sync.c.id.in_(latest)
        )
    )
    return Snapshot(
        depths,
        max(0.0, (now - _aware(oldest)).total_seconds()) if oldest is not None else 0.0,
        tuple(
            DirsyncRun(r.customer, r.status, _aware(r.finished_at), r.counts or {}) for r in runs
        ),
    )


class DatabaseCollector(Collector):
    """The scrape-time figures from the database; `refresh()` before each exposition."""

    def __init__(self, store: Store, timeout: float) -> None:
        self.store, self.timeout = store, timeout
        self.snapshot = Snapshot()
        self.ok = False
        self.seconds = 0.0

    async def refresh(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            self.snapshot = await asyncio.wait_for(
                self.store.call(read_snapshot, utcnow()), self.timeout
            )
            self.ok = True
        except Exception as exc:  # the database is slow or away: the last figures, flagged
            self.ok = False
            log.warning("metrics: the queue figures could not be read: %s", exc)
        self.seconds = loop.time() - started

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        ok = GaugeMetricFamily(
            "mailsms_scrape_ok", "1 when this scrape read the database's figures, else 0."
        )
        ok.add_metric([], 1.0 if self.ok else 0.0)
        yield ok
        took = GaugeMetricFamily(
            "mailsms_scrape_seconds", "Seconds the scrape-time database queries took."
        )
        took.add_metric([], self.seconds)
        yield took
        depth = GaugeMetricFamily(
            "mailsms_queue_depth",
            "Rows waiting in a queue (orders, notices, push, inbound), by status.",
            labels=["queue", "status"],
        )
        for (queue, status), n in sorted(snap.depths.items()):
            depth.add_metric([queue, status], n)
        yield depth
        oldest = GaugeMetricFamily(
            "mailsms_oldest_due_order_seconds",
            "Seconds the oldest due order (queued or deferred, due now) has been waiting.",
        )
        oldest.add_metric([], snap.oldest_due)
        yield oldest
        yield from _dirsync_families(snap.dirsync)


def _dirsync_families(runs: Iterable[DirsyncRun]) -> Iterator[Metric]:
    at = GaugeMetricFamily(
        "mailsms_dirsync_last_run_timestamp_seconds",
        "When a customer's last `mailsms dirsync` run finished (Unix time).",
        labels=["customer"],
    )
    ok = GaugeMetricFamily(
        "mailsms_dirsync_last_run_ok",
        "1 when a customer's last dirsync run applied, found nothing to change or was a dry "
        "run; 0 when it was refused or failed.",
        labels=["customer", "status"],
    )
    counts = GaugeMetricFamily(
        "mailsms_dirsync_last_run_users",
        "What a customer's last dirsync run counted (read, created, updated, disabled ...).",
        labels=["customer", "count"],
    )
    for run in runs:
        at.add_metric([run.customer], run.finished_at.timestamp())
        ok.add_metric([run.customer, run.status], 1.0 if run.status in DIRSYNC_OK else 0.0)
        for key, value in sorted(run.counts.items()):
            if isinstance(value, int | float) and not isinstance(value, bool):
                counts.add_metric([run.customer, str(key)], float(value))
    yield from (at, ok, counts)


class SmppCollector(Collector):
    """Every SMPP bind's state, window and counters, read from memory at scrape time."""

    def __init__(self, transports: Mapping[str, SmppTransport]) -> None:
        self.transports = transports

    def collect(self) -> Iterator[Metric]:
        labels = ["smsc", "bind"]
        up = GaugeMetricFamily("mailsms_smpp_bind_up", "1 when the bind is bound.", labels=labels)
        paused = GaugeMetricFamily(
            "mailsms_smpp_bind_paused",
            "1 while the bind is paused after a throttling answer.",
            labels=labels,
        )
        used = GaugeMetricFamily(
            "mailsms_smpp_window_in_use", "Requests awaiting their response.", labels=labels
        )
        size = GaugeMetricFamily("mailsms_smpp_window_size", "The bind's window.", labels=labels)
        counters = {
            "submitted": CounterMetricFamily(
                "mailsms_smpp_submit_sm", "submit_sm accepted by the SMSC.", labels=labels
            ),
            "throttled": CounterMetricFamily(
                "mailsms_smpp_throttled",
                "submit_sm answered ESME_RTHROTTLED or ESME_RMSGQFUL.",
                labels=labels,
            ),
            "rejected": CounterMetricFamily(
                "mailsms_smpp_rejected", "submit_sm refused with another error.", labels=labels
            ),
            "timeouts": CounterMetricFamily(
                "mailsms_smpp_response_timeouts", "Requests without a response.", labels=labels
            ),
            "lost": CounterMetricFamily(
                "mailsms_smpp_connection_lost",
                "Submits cut off by a lost connection.",
                labels=labels,
            ),
            "receipts": CounterMetricFamily(
                "mailsms_smpp_receipts", "Delivery receipts received.", labels=labels
            ),
            "mo": CounterMetricFamily("mailsms_smpp_mo", "MO SMS received.", labels=labels),
        }
        now = asyncio.get_running_loop().time()
        for name, transport in sorted(self.transports.items()):
            for bind in transport.binds:
                key = [name, bind.name]
                state = bind.state(now)
                up.add_metric(key, 0.0 if state == "down" else 1.0)
                paused.add_metric(key, 1.0 if state == "paused" else 0.0)
                used.add_metric(key, bind.stats.in_flight)
                size.add_metric(key, bind.window)
                for attr, family in counters.items():
                    family.add_metric(key, getattr(bind.stats, attr))
        yield from (up, paused, used, size, *counters.values())


def metrics_route(registry: CollectorRegistry, database: DatabaseCollector) -> Route:
    """GET /metrics: the Prometheus text exposition of `registry`."""

    async def metrics(request: Request) -> Response:
        await database.refresh()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics, methods=["GET"])
