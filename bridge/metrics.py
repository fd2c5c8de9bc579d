"""The bridge's Prometheus metrics: every counter and histogram, built on a registry it is given.

`Metrics(registry)` is made once by the composition root (`bridge/app.py`) and handed to
the components that count (the SMTP intake, dispatch, the receipts inbox, the final-order
steps, the mailer, the inbound step, the push worker). Counting is an increment in
memory: nothing here reads the database. What is read at scrape time (queue depths, the
oldest due order, dirsync runs, the SMPP binds) is collected by `bridge/http/scrape.py`.
A component built without metrics (tests, CLI commands) gets `Metrics.unregistered()`,
on a registry of its own that nobody scrapes. Labels are bounded: code classes,
enhanced status codes, statuses, kinds, actions and SMSC names, never addresses or ids;
customer names only up to `max_customers` of them (the first seen), the rest as "other".

With `[server] processes = N` (`bridge/processes.py`) every process counts in files of
its own, prometheus_client's multiprocess mode: the parent makes a fresh directory for
the run (`MetricFiles`), each child switches to it before it makes its metrics
(`count_in_files`), and the first process's `/metrics` sums every process's counters and
histograms at scrape time (`process_metrics`). The customers named in labels are agreed
between the processes through a file in that directory, so the bound holds for the
bridge. A Gauge here must name its `multiprocess_mode` (what the processes' values add
up to: `livesum` for what each holds now, `max` or `mostrecent` for one figure; the TLS
certificates' expiry is `livemin`, the earliest any running process serves); what only
the first process knows (the binds, the database's figures) is collected at scrape time
instead (`bridge/http/scrape.py`) and stays out of the files.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

log = logging.getLogger("bridge")

OTHER = "other"  # the customer label once the named ones are used up
FILES_ENV = "PROMETHEUS_MULTIPROC_DIR"  # where prometheus_client's multiprocess mode counts
DIRECTORY_PREFIX = "mailsms-metrics-"  # + the parent's pid + "-" + a random part
CUSTOMER_NAMES = "customer-labels"  # the customers named so far, one JSON string a line

# Seconds from accepted to submitted, and from submitted to a final status (receipts can
# take hours, an SMSC's store-and-forward days).
SUBMIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
FINAL_BUCKETS = (1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 3 * 86400)


@dataclass(slots=True)
class CustomerLabels:
    """Which customers get a label of their own: the first `limit` seen; the rest are "other".

    With `shared` (a file in the run's metrics directory that every process reads and
    appends to under a lock), the first `limit` seen by any process of the bridge, so the
    series stay bounded however many processes count. The file is read only the first time
    a process meets a name it does not know, and no more once the limit is reached.
    """

    limit: int = 100
    shared: Path | None = None
    _named: set[str] = field(default_factory=set)
    _full: bool = False

    def label(self, name: str) -> str:
        if name in self._named:
            return name
        if self._full:
            return OTHER
        if self.shared is not None:
            try:
                self._named.update(_claim(self.shared, name, self.limit))
            except (OSError, ValueError) as exc:  # a label never costs a mail: no more names
                log.warning("metrics: customer labels: %s cannot be read: %s", self.shared, exc)
            if name in self._named:
                return name
        elif len(self._named) < self.limit:
            self._named.add(name)
            return name
        self._full = True  # the named ones never change: everyone else is "other" from now
        return OTHER


def _claim(path: Path, name: str, limit: int) -> list[str]:
    """The names in `path` once `name` is added to them, if fewer than `limit` were there."""
    with path.open("a+", encoding="utf-8") as file:
        fcntl.flock(file, fcntl.LOCK_EX)  # released when the file is closed, after the write
        file.seek(0)
        names: list[str] = [json.loads(line) for line in file.read().splitlines()]
        if name not in names and len(names) < limit:
            file.write(json.dumps(name) + "\n")  # "a+": at the end, whatever was read
            names.append(name)
    return names


@dataclass(frozen=True, slots=True)
class Metrics:
    """The metric objects, registered on one registry."""

    registry: CollectorRegistry
    smtp_sessions: Counter
    smtp_replies: Counter
    mails_accepted: Counter
    intake_paced: Counter
    intake_paced_seconds: Counter
    orders_accepted: Counter
    dispatch_outcomes: Counter
    orders_submitted: Counter
    orders_final: Counter
    receipts: Counter
    inbound_sms: Counter
    notices: Counter
    mailer_sessions: Counter
    inbound_actions: Counter
    push_deliveries: Counter
    push_connections: Counter
    database_commits: Counter
    database_committed_items: Counter
    submit_seconds: Histogram
    final_seconds: Histogram
    customer_orders: Counter
    tls_certificate_expiry: Gauge
    customers: CustomerLabels = field(default_factory=CustomerLabels)

    def customer(self, name: str) -> str:
        """The label for customer `name`: itself, or "other" once `max_customers` are named."""
        return self.customers.label(name)

    @classmethod
    def on(
        cls,
        registry: CollectorRegistry,
        *,
        max_customers: int = 100,
        shared_names: Path | None = None,
    ) -> Metrics:
        """Create every metric on `registry` (`shared_names`: see `CustomerLabels`)."""
        r = registry
        return cls(
            registry=r,
            customers=CustomerLabels(max_customers, shared_names),
            smtp_sessions=Counter(
                "mailsms_smtp_sessions",
                "SMTP connections, by result (open, or refused at connect).",
                ["result"],
                registry=r,
            ),
            smtp_replies=Counter(
                "mailsms_smtp_replies",
                "SMTP replies sent, by code class (2xx, 4xx, 5xx) and reason (enhanced code).",
                ["code_class", "reason"],
                registry=r,
            ),
            mails_accepted=Counter(
                "mailsms_mails_accepted", "Mails accepted (committed, then 250).", registry=r
            ),
            intake_paced=Counter(
                "mailsms_intake_paced",
                "New messages that waited before they were taken because this process was "
                "busy ([server] in_flow_busy, in_flow_delay), by door (smtp, smpp, api).",
                ["door"],
                registry=r,
            ),
            intake_paced_seconds=Counter(
                "mailsms_intake_paced_seconds",
                "Seconds new messages waited in all because this process was busy, by door.",
                ["door"],
                registry=r,
            ),
            database_commits=Counter(
                "mailsms_database_commits",
                "Transactions the group commit committed (the mails, receipts, submit records, "
                "claims ... queued together: one commit and one fsync for all of them).",
                registry=r,
            ),
            database_committed_items=Counter(
                "mailsms_database_committed_items",
                "Items those transactions wrote; divided by the commits, the batch size.",
                registry=r,
            ),
            orders_accepted=Counter(
                "mailsms_orders_accepted",
                "SMS orders written by accepted mails (one per recipient number).",
                registry=r,
            ),
            dispatch_outcomes=Counter(
                "mailsms_dispatch_outcomes",
                "Dispatch attempts of an order, by outcome (submitted, deferred, final, held, "
                "parked).",
                ["outcome"],
                registry=r,
            ),
            orders_submitted=Counter(
                "mailsms_orders_submitted",
                "Orders every part of which an SMSC accepted, by SMSC.",
                ["smsc"],
                registry=r,
            ),
            orders_final=Counter(
                "mailsms_orders_final",
                "Orders that reached a final status, by status.",
                ["status"],
                registry=r,
            ),
            receipts=Counter(
                "mailsms_receipts",
                "Delivery receipts stored, by SMSC and state.",
                ["smsc", "state"],
                registry=r,
            ),
            inbound_sms=Counter(
                "mailsms_inbound_sms", "Inbound (MO) SMS stored, by SMSC.", ["smsc"], registry=r
            ),
            notices=Counter(
                "mailsms_notices",
                "Notice deliveries (status mail, DSN, SMS2Mail, reports ...), by kind and "
                "result (sent, deferred, failed, held).",
                ["kind", "result"],
                registry=r,
            ),
            mailer_sessions=Counter(
                "mailsms_mailer_sessions",
                "The mailer's SMTP sessions: opened, reused (a mail over a kept session), "
                "ended_by_relay (a kept session the relay had ended; the mail went over "
                "another).",
                ["event"],
                registry=r,
            ),
            inbound_actions=Counter(
                "mailsms_inbound_actions",
                "Actions run for inbound SMS, by action (unroutable: nobody to give it to; "
                "limited: over [inbound] mo_limit, no action run).",
                ["action"],
                registry=r,
            ),
            push_deliveries=Counter(
                "mailsms_push_deliveries",
                "HTTP push deliveries, by result (sent, deferred, failed).",
                ["result"],
                registry=r,
            ),
            push_connections=Counter(
                "mailsms_push_connections",
                "The push worker's requests by connection: opened (over a new connection), "
                "reused (over a kept one), ended_by_receiver (a kept connection the receiver "
                "had closed or left an earlier answer on; the push went again over a new one).",
                ["event"],
                registry=r,
            ),
            submit_seconds=Histogram(
                "mailsms_order_submit_seconds",
                "Seconds from an order's acceptance to its submission.",
                buckets=SUBMIT_BUCKETS,
                registry=r,
            ),
            final_seconds=Histogram(
                "mailsms_order_final_seconds",
                "Seconds from an order's submission to its final status.",
                buckets=FINAL_BUCKETS,
                registry=r,
            ),
            customer_orders=Counter(
                "mailsms_customer_orders_accepted",
                "Orders accepted per customer (the first max_customers names; the rest as "
                '"other").',
                ["customer"],
                registry=r,
            ),
            tls_certificate_expiry=Gauge(
                "mailsms_tls_certificate_expiry_timestamp_seconds",
                "End of validity (notAfter, Unix time) of the TLS certificate each door "
                "serves (smtp, https, smpp) and of the mailer's client certificate (mailer).",
                ["use"],
                registry=r,
                multiprocess_mode="livemin",
            ),
        )

    @classmethod
    def unregistered(cls) -> Metrics:
        """Metrics on a registry of their own (a component that nobody scrapes)."""
        return cls.on(CollectorRegistry(auto_describe=False))


@dataclass(frozen=True, slots=True)
class MetricFiles:
    """The directory one run of several bridge processes counts in, one file set per process.

    Made fresh at each start (a new directory: nothing of an earlier run is counted again);
    a child's exit removes its live-gauge files (`mark_process_dead`; its counters and
    histograms stay, so the totals never go back); the whole directory goes when the run
    ends, and a directory an earlier run left behind (its parent killed) at the next start.
    """

    directory: Path

    @classmethod
    def fresh(cls, parent: Path | None = None) -> MetricFiles:
        """A new, empty directory under `parent` (default: TMPDIR, else /tmp)."""
        base = Path(parent) if parent is not None else Path(tempfile.gettempdir())
        for old in base.glob(f"{DIRECTORY_PREFIX}*"):
            pid = old.name.removeprefix(DIRECTORY_PREFIX).split("-", 1)[0]
            if pid.isdigit() and not _running(int(pid)):
                shutil.rmtree(old, ignore_errors=True)
        made = tempfile.mkdtemp(prefix=f"{DIRECTORY_PREFIX}{os.getpid()}-", dir=base)
        return cls(Path(made))

    def dead(self, pid: int) -> None:
        """Process `pid` has exited: its live gauges no longer count (its counters do)."""
        mark_process_dead(pid, str(self.directory))  # type: ignore[no-untyped-call]

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def count_in_files(directory: Path) -> None:
    """From now on this process counts in `directory`; call it before any metric is made.

    prometheus_client chooses where values live when it is imported: in memory, or in
    memory-mapped files (one per process and metric type) when PROMETHEUS_MULTIPROC_DIR
    is set. A forked child inherits its parent's choice, made without the variable, so
    the variable is set here and the choice made again.
    """
    os.environ[FILES_ENV] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def files_directory() -> Path | None:
    """The directory this process counts in (`count_in_files`), or None: in memory."""
    found = os.environ.get(FILES_ENV)
    if values.ValueClass is values.MutexValue or not found:
        return None
    return Path(found)


def process_metrics(max_customers: int) -> tuple[CollectorRegistry, Metrics]:
    """The registry `/metrics` exposes, and this process's metrics.

    Counted in memory (one process), the metrics are on that registry. Counted in files,
    the registry reads every process's files at each scrape (counters and histograms
    summed over the processes, this one's included, without a `pid` label) and the
    metrics sit on a registry nobody exposes: on both, this process would count twice.
    """
    directory = files_directory()
    if directory is None:
        registry = CollectorRegistry()
        return registry, Metrics.on(registry, max_customers=max_customers)
    exposed = CollectorRegistry()
    MultiProcessCollector(exposed, path=str(directory))  # type: ignore[no-untyped-call]
    names = directory / CUSTOMER_NAMES
    own = Metrics.on(CollectorRegistry(), max_customers=max_customers, shared_names=names)
    return exposed, own


def elapsed(start: datetime, end: datetime) -> float:
    """Seconds from `start` to `end`, at least 0 (a naive time, as SQLite gives it back, is UTC)."""
    start = start if start.tzinfo is not None else start.replace(tzinfo=UTC)
    end = end if end.tzinfo is not None else end.replace(tzinfo=UTC)
    return max(0.0, (end - start).total_seconds())
