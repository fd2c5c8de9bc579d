"""The composition root: build every component from the settings, run them, stop them gracefully.

`Bridge.start()` opens and migrates the database (checking its durability settings),
starts the sandbox SMSC when enabled, binds the transports, starts the workers, opens
the SMTP listener and finally the HTTP listener (health, readiness, metrics);
`Bridge.stop()` closes in the reverse order, so nothing that was acknowledged is lost.
The metrics live on a registry of this bridge's own (`self.registry`, what /metrics
exposes: `bridge.metrics.process_metrics`), handed to the components that count.
`run()` is what `mailsms serve` calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import signal
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import phonenumbers
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from bridge.api.messages import MessageService
from bridge.api.routes import Api
from bridge.db import engine as db
from bridge.db.clock import utcnow
from bridge.db.stalled import StalledSessions
from bridge.db.store import Store, run_sync
from bridge.db.worker import Worker
from bridge.errors import ConfigError, StorageUnavailable
from bridge.http import checks
from bridge.http.app import build_app
from bridge.http.health import Check, health_routes
from bridge.http.scrape import DatabaseCollector, SmppCollector, metrics_route
from bridge.http.server import HttpServer
from bridge.inbound.inbox import StoreInbox
from bridge.inbound.mo_store import StoreMoParts
from bridge.inbound.service import InboundService
from bridge.inbound.store import alert_contact
from bridge.intake.access_store import exposures
from bridge.intake.backpressure import Backpressure
from bridge.intake.handler import IntakeHandler
from bridge.intake.listener import SmtpCounts, release_listener, start_listener
from bridge.intake.pacing import (
    SAMPLE_EVERY,
    SQLITE_COMMIT_WAIT,
    CommitMark,
    CpuLoad,
    OwnerLoad,
    Pacer,
    SharedLoad,
    UsualWaits,
    read_clocks,
    usable_cpus,
)
from bridge.intake.server import Shared
from bridge.intake.tls import CertWatcher
from bridge.jobs import ReportJobs
from bridge.keyword_lists.export import export_due
from bridge.metrics import process_metrics
from bridge.mt import lanes
from bridge.mt.dispatch import Dispatcher
from bridge.mt.receipts import Applied, apply_receipts, finish_unconfirmed
from bridge.mt.routing import Route
from bridge.mt.steps import Steps
from bridge.notices.limits import TemplateLimits
from bridge.notices.mailer import Mailer
from bridge.notices.render import DEFAULT_TEMPLATES, Renderer
from bridge.outcomes.dsn_queue import queue_delay_dsns
from bridge.outcomes.steps import steps as counted_steps
from bridge.portal.accounts import ensure_demo_admin
from bridge.portal.web import Portal
from bridge.push.worker import Pusher
from bridge.sandbox.smsc import SandboxSmsc
from bridge.settings import Settings
from bridge.smpp_server.accounts import ensure_demo_account
from bridge.smpp_server.server import SmppServer
from bridge.tenants.admin import ensure_demo
from bridge.transports.bind_stats import StoreBindStats
from bridge.transports.smpp import SmppConfig, SmppTransport

log = logging.getLogger("bridge")

TRANSPORTS = {"smpp": SmppTransport}


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the running bridge listens (ports are real even when 0 was configured)."""

    smtp: tuple[str, int]
    sandbox: tuple[str, int] | None
    smpp: tuple[str, int] | None = None  # the SMPP server, when enabled
    http: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class Wakeups:
    """Wake-ups of the workers that other components hand work to."""

    mail: Callable[[], None]
    dispatch: Callable[[], None]
    receipts: Callable[[], None]
    inbound: Callable[[], None]


class _Receipts:
    """The receipts step: apply receipts; once a second, end orders past their deadline."""

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        window: float,
        on_final: Callable[[], None],
        steps: Steps,
    ) -> None:
        self.store, self.dispatcher, self.window, self.on_final = (
            store,
            dispatcher,
            window,
            on_final,
        )
        self.steps = steps
        self.sweep_at = 0.0  # receipt deadlines are looked at once a second, not every step
        self.full = False  # the last round hit a limit: more may be waiting

    async def step(self) -> int:
        now = asyncio.get_running_loop().time()
        sweep = now >= self.sweep_at
        # In the next group commit, after what the others write in it (the receipts just
        # received among them: one transaction, not one more); the hold as of its start.
        result = await self.store.grouped(
            _receipts_rounds,
            _Round(self.window, sweep, self.steps),
            lane=lanes.OUTCOMES,
            after_others=True,
            taken=self._held,
        )
        more_to_sweep = bool(result.unconfirmed) or result.orphaned >= RECEIPTS_BATCH
        if sweep and not more_to_sweep:
            self.sweep_at = now + 1.0  # else more are waiting: sweep again next step
        self.full = result.applied + result.unmatched >= RECEIPTS_BATCH or more_to_sweep
        if result.notices:  # a final order that queued no notice leaves the mailer alone
            self.on_final()
        return result.applied + result.unmatched + result.unconfirmed

    def more(self) -> bool:
        """Step again at once only after a full round; else the next receipt wakes it
        (a receipt held for a submit being recorded: the record's wake-up)."""
        return self.full

    def _held(self, rounds: list[_Round]) -> list[_Round]:
        """The rounds with the dispatcher's hold as the transaction starts: a submit whose
        outcome is in that transaction, or not yet recorded, still holds its receipts."""
        hold = self.dispatcher.receipt_hold()
        return [dataclasses.replace(r, hold=hold) for r in rounds]


@dataclass(frozen=True, slots=True)
class _Round:
    """One receipts step's work: the receipt window, whether to sweep (orphans, receipt
    deadlines), the final steps; `hold` set as its transaction starts (`_Receipts._held`)."""

    window: float
    sweep: bool
    steps: Steps
    hold: Mapping[str, datetime] = dataclasses.field(default_factory=dict)


class _ListExports:
    """The keyword lists' daily exports (each mailed when due)."""

    def __init__(self, store: Store, on_queued: Callable[[], None]) -> None:
        self.store, self.on_queued = store, on_queued

    async def step(self) -> int:
        if await self.store.call(export_due, utcnow()):
            self.on_queued()
        return 0  # the next check is the next tick


class _DelayDsns:
    """DELAY DSNs for orders deferred longer than `dsn_delay_after`."""

    def __init__(self, store: Store, after: float, on_queued: Callable[[], None]) -> None:
        self.store, self.after, self.on_queued = store, after, on_queued

    async def step(self) -> int:
        queued = await self.store.call(queue_delay_dsns, utcnow(), self.after, 200)
        if queued:
            self.on_queued()
        return queued


@dataclass(frozen=True)
class Share:
    """This process's part of a bridge run by several processes (`[server] processes`).

    The first process (index 0) is the bridge as one process is: the SMPP binds, dispatch,
    receipts, the HTTP listener; it accepts SMTP too only when `smtp` says so (`[server]
    first_process_smtp`: by default not, with two processes or more, so that the larger
    part of the work per mail, dispatch and receipts, has its core). The others accept
    SMTP on the same port (SO_REUSEPORT), commit what they accept, and share the queues
    that need no SMPP bind: notices (status mails, DSNs), status pushes and inbound SMS
    routing, claimed through the one lease (`bridge.db.queue.claim`).
    Dispatch (it needs the binds) and receipts (matched against the dispatcher's
    submits in flight), DELAY DSNs, list exports and reports stay with the first.
    `load` is the first process's load, which it publishes four times a second and the
    others' SMTP intakes pace by as well as by their own. `wake` is one end of a datagram
    socket pair: the others send `WAKE_DISPATCH` on it
    when they queued an order, the first reads it and wakes its dispatcher; the first
    sends `WAKE_MAIL` or `WAKE_INBOUND` the other way when it queued a notice or received
    an inbound SMS, and whichever of the others reads it first takes a share of the work.
    """

    index: int
    count: int
    wake: socket.socket
    smtp: bool = True  # this process accepts SMTP
    # The first process's load, published by it for the others' flow control (a page
    # shared by every process; `bridge/intake/pacing.py`). None: the others pace by their own.
    load: SharedLoad | None = None
    # The SMTP door's counts per client (connections, AUTH failures), in tables every
    # process shares (`bridge/intake/listener.py`). None: this process's own.
    counts: SmtpCounts | None = None

    @property
    def owner(self) -> bool:
        """Owns the SMPP binds, the sandbox, the SMPP server, HTTP and the queue workers."""
        return self.index == 0


RECEIPTS_BATCH = 500  # receipts applied (and orphaned) per receipts step at most
# Seconds a wake-up of the receipts and notice workers waits, so that the receipts (the
# notices) arriving meanwhile are applied (sent) in the same step: one transaction for
# many instead of one each. Neither delays a submit (dispatch is woken at once); a final
# status or a status mail comes that much later.
RECEIPTS_SETTLE = 0.05
NOTICES_SETTLE = 0.1
WAKE_DISPATCH = b"d"
WAKE_MAIL = b"m"
WAKE_INBOUND = b"i"


def _poster(sock: socket.socket, what: bytes) -> Callable[[], None]:
    """A wake-up sent over the socket pair (never blocks; a full buffer has wake-ups already),
    once per turn of the event loop however often it is asked for in that turn."""
    pending = False

    def send() -> None:
        nonlocal pending
        pending = False
        with contextlib.suppress(BlockingIOError, InterruptedError, ConnectionRefusedError):
            sock.send(what)

    def post() -> None:
        nonlocal pending
        if not pending:
            pending = True
            asyncio.get_running_loop().call_soon(send)

    return post


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def wake() -> None:
        first()
        second()

    return wake


def _on_wakeups(sock: socket.socket, wakes: dict[bytes, Callable[[], None]]) -> None:
    """Read the wake-ups arriving on `sock` and call the matching wakes."""
    sock.setblocking(False)

    def readable() -> None:
        what = set()
        with contextlib.suppress(BlockingIOError, InterruptedError):
            for _ in range(1024):
                what.add(sock.recv(16))
        for key, wake in wakes.items():
            if key in what:
                wake()

    asyncio.get_running_loop().add_reader(sock.fileno(), readable)


class Bridge:
    def __init__(
        self,
        settings: Settings,
        *,
        templates: Path = DEFAULT_TEMPLATES,
        share: Share | None = None,
    ) -> None:
        self.settings = settings
        self.share = share
        self.templates = templates
        self.store: Store | None = None
        self.sandbox: SandboxSmsc | None = None
        self.transports: dict[str, SmppTransport] = {}
        self.workers: dict[str, Worker] = {}
        self.mailer: Mailer | None = None
        self.pusher: Pusher | None = None
        self.dispatcher: Dispatcher | None = None
        self.handler: IntakeHandler | None = None
        self.smpp_server: SmppServer | None = None
        self.portal: Portal | None = None  # the administration portal, when enabled
        self._server: asyncio.Server | None = None
        self._shared: Shared | None = None
        self.http: HttpServer | None = None
        self.registry, self.metrics = process_metrics(settings.http.customer_labels)
        self.steps = counted_steps(self.metrics)
        # the doors' TLS certificates, renewed without a restart; their expiry watched
        self.certs = CertWatcher(self.metrics, settings.server.tls_check_interval)
        self.pacer: Pacer | None = None  # made with the store (`_pacer`)
        self._stopped = False
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> Endpoints:
        """Open the database, start the sandbox, the transports, the workers and the intake."""
        phonenumbers.enable_pattern_cache()  # process-wide: its metadata patterns compiled once
        if self.share is not None and not self.share.owner:
            return await self._start_intake_only(self.share)
        store = self.store = await self._open_store()
        self.pacer = self._pacer(store)
        sandbox_at = await self._start_sandbox()
        self._build_transports(store)
        backpressure = await self._backpressure(store)
        wake = self._build_workers(store, backpressure)
        inbox = StoreInbox(
            store, on_receipt=wake.receipts, on_message=wake.inbound, metrics=self.metrics
        )
        for transport in self.transports.values():
            await transport.start(inbox)
        for worker in self.workers.values():
            self._tasks.append(asyncio.create_task(worker.run(), name=f"worker-{worker.name}"))
        smpp = await self._start_smpp_server(store, backpressure, wake)
        if self.share is not None:
            _on_wakeups(self.share.wake, {WAKE_DISPATCH: wake.dispatch})
        if self.share is None or self.share.smtp:
            smtp = await self._start_intake(store, backpressure, wake)
        else:
            smtp = (self.settings.smtp.host, self.settings.smtp.port)
            log.info(
                "process 1 of %d: SMPP binds, dispatch and receipts; SMTP on port %d is "
                "accepted by the other processes",
                self.share.count,
                smtp[1],
            )
        http = await self._start_http(store, backpressure, wake)
        self._watch_certificates()
        return Endpoints(smtp=smtp, sandbox=sandbox_at, smpp=smpp, http=http)

    def reload(self) -> None:
        """SIGHUP (`systemctl reload`, a certbot deploy hook): the TLS certificate and key
        files of every door and of the mailer checked now, and renewed ones taken, even
        with `[server] tls_check_interval = 0`. The rest of the settings is read only at
        start (a restart applies it); notice templates are looked at every 5 s anyway."""
        log.info("SIGHUP: checking the TLS certificate files now")
        try:
            self.certs.check(reload=True)
        except Exception:  # a reload never stops the bridge
            log.exception("SIGHUP: the TLS certificate check failed")

    def _watch_certificates(self) -> None:
        """Start the certificate checks: the doors', and the mailer's client certificates
        (renewed in the contexts its SMTP client holds)."""
        if self.mailer is not None:
            for cert, contexts in self.mailer.client.client_certificates().items():
                self.certs.watch("mailer", cert.cert_file, cert.key_file, contexts)
        self.certs.start()

    async def _backpressure(self, store: Store) -> Backpressure:
        """The queue's high-water mark and the database disk's free space, read once now."""
        s = self.settings
        backpressure = Backpressure(
            store,
            high_water=s.smtp.queue_high_water,
            min_free_mb=s.smtp.min_free_disk_mb,
            disk=db.sqlite_directory(s.database_url),
        )
        await backpressure.refresh()
        return backpressure

    async def _start_intake_only(self, share: Share) -> Endpoints:
        """A process other than the first: SMTP, and its share of the queues without binds."""
        s = self.settings
        engine = db.open_engine(s.database_url, timeout=s.database_timeout)
        store = self.store = Store(engine, metrics=self.metrics, timeout=s.database_timeout)
        self.pacer = self._pacer(store)
        backpressure = await self._backpressure(store)
        to_owner = _poster(share.wake, WAKE_DISPATCH)
        wake = self._build_shared_workers(store, backpressure, to_owner)
        for worker in self.workers.values():
            self._tasks.append(asyncio.create_task(worker.run(), name=f"worker-{worker.name}"))
        _on_wakeups(share.wake, {WAKE_MAIL: wake.mail, WAKE_INBOUND: wake.inbound})
        smtp = await self._start_intake(store, backpressure, wake)
        self._watch_certificates()
        return Endpoints(smtp=smtp, sandbox=None)

    async def _start_smpp_server(
        self, store: Store, backpressure: Backpressure, wake: Wakeups
    ) -> tuple[str, int] | None:
        s = self.settings
        if not s.smpp_server.enabled:
            return None
        self.smpp_server = SmppServer(
            s.smpp_server,
            s.defaults.model_dump(),
            store,
            on_accepted=wake.dispatch,
            wake_before_commit=self._claims_join(),
            pacer=self.pacer,
            backpressure=backpressure,
            alert_fallback=s.inbound.postmaster,
            certs=self.certs,
        )
        return await self.smpp_server.start()

    async def _open_store(self) -> Store:
        url = self.settings.database_url
        engine = db.open_engine(url, timeout=self.settings.database_timeout)
        try:
            durability = await asyncio.to_thread(self._prepare_database, engine)
        except SQLAlchemyError as exc:  # unreachable, refused, wrong password, ...
            engine.dispose()
            first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise StorageUnavailable(f"database {db.location(url)} unavailable: {first}") from exc
        log.info("database %s ready: %s", db.location(url), durability)
        return Store(engine, metrics=self.metrics, timeout=self.settings.database_timeout)

    async def _start_sandbox(self) -> tuple[str, int] | None:
        s = self.settings.sandbox
        if not s.enabled:
            return None
        self.sandbox = SandboxSmsc(s.config())
        await self.sandbox.start()
        log.info(
            "sandbox SMSC listening on %s:%d (phones' inbox: %s)",
            s.host,
            self.sandbox.port,
            s.inbox,
        )
        return (s.host, self.sandbox.port)

    def _build_transports(self, store: Store) -> None:
        s = self.settings
        bind_stats = StoreBindStats(store)  # one writer for this process's binds
        for smsc in s.smsc:
            port = self.sandbox.port if self.sandbox and smsc.name == "sandbox" else smsc.port
            country = smsc.country or s.defaults.default_country
            self.transports[smsc.name] = TRANSPORTS["smpp"](
                SmppConfig.of(smsc, port=port, country=country),
                mo_parts=StoreMoParts(store),
                stats_sink=bind_stats,
            )

    def _renderer(self) -> Renderer:
        s = self.settings
        return Renderer(
            self.templates,
            from_address=s.mailer.from_address,
            from_name=s.mailer.from_name,
            hostname=s.smtp.hostname,
            customer_templates=s.inbound.customer_templates,
            template_limits=TemplateLimits(
                s.inbound.template_timeout, s.inbound.template_max_chars
            ),
        )

    def _build_shared_workers(
        self, store: Store, backpressure: Backpressure, dispatch: Callable[[], None]
    ) -> Wakeups:
        """A process other than the first: the workers that need no SMPP bind (notices,
        pushes, inbound routing); orders it queues wake the first process's dispatcher."""
        s = self.settings
        renderer = self._renderer()
        self.mailer = Mailer(s.mailer, store, renderer, self.metrics)
        w_mail = self._worker(
            "mailer",
            self.mailer.step,
            s.mailer.poll_interval,
            settle=NOTICES_SETTLE,
        )
        _, w_inbound = self._push_and_inbound(store, renderer, w_mail.wake, dispatch)
        self._worker("backpressure", backpressure.refresh, 2.0)
        return Wakeups(w_mail.wake, dispatch, lambda: None, w_inbound.wake)

    def _push_and_inbound(
        self,
        store: Store,
        renderer: Renderer,
        mail: Callable[[], None],
        dispatch: Callable[[], None],
    ) -> tuple[Worker, Worker]:
        s = self.settings
        pusher = self.pusher = Pusher(
            s.push,
            store,
            alert_contact,
            s.inbound.postmaster,
            on_notice=mail,
            metrics=self.metrics,
        )
        w_push = self._worker("push", pusher.step, s.push.poll_interval)
        inbound = InboundService(
            s.inbound,
            s.push,
            store,
            renderer.templates,
            s.smtp.domains[0],
            on_notice=mail,
            on_order=dispatch,
            on_push=w_push.wake,
            default_timezone=s.defaults.timezone,
            metrics=self.metrics,
        )
        w_inbound = self._worker("inbound", inbound.step, s.inbound.poll_interval)
        return w_push, w_inbound

    def _build_workers(self, store: Store, backpressure: Backpressure) -> Wakeups:
        """Every worker, wired so that what one queues wakes the one that takes it."""
        s = self.settings
        renderer = self._renderer()
        self.mailer = Mailer(s.mailer, store, renderer, self.metrics)
        w_mail = self._worker(
            "mailer",
            self.mailer.step,
            s.mailer.poll_interval,
            settle=NOTICES_SETTLE,
        )
        mail, inbound = w_mail.wake, self._shared_wake(WAKE_INBOUND)
        if (others := self._shared_wake(WAKE_MAIL)) is not None:  # a notice: theirs too
            mail = _both(w_mail.wake, others)
        dispatcher = self.dispatcher = Dispatcher(
            s.dispatch,
            store,
            self.transports,
            [Route(r.prefix, r.transports) for r in s.routes],
            steps=self.steps,
            on_final=mail,
            metrics=self.metrics,
        )
        w_dispatch = self._worker(
            "dispatch", dispatcher.step, s.dispatch.poll_interval, more=dispatcher.more
        )
        dispatcher.wake = w_dispatch.wake
        _, w_inbound = self._push_and_inbound(store, renderer, mail, w_dispatch.wake)
        delay_dsns = _DelayDsns(store, s.smtp.dsn_delay_after, mail)
        receipts = _Receipts(store, dispatcher, s.dispatch.receipt_window, mail, self.steps)
        lists = _ListExports(store, mail)
        self._worker("backpressure", backpressure.refresh, 2.0)
        if store.engine.dialect.name == "postgresql":  # another instance's frozen batch
            stalled = StalledSessions(store, s.database_timeout)
            self._worker("stalled-sessions", stalled.step, stalled.step_every)
        if self.share is not None and self.share.count > 1 and self.share.load is not None:
            # the first of several processes publishes its load (the others only read it)
            clocks = partial(read_clocks, store.waits)
            owner = OwnerLoad(self.share.load, clocks, self._load(store))
            self._worker("load", owner.step, SAMPLE_EVERY)
        self._worker("delay-dsn", delay_dsns.step, 60.0)
        w_receipts = self._worker(
            "receipts", receipts.step, 1.0, more=receipts.more, settle=RECEIPTS_SETTLE
        )
        self._worker("lists", lists.step, s.inbound.list_check_interval)
        jobs = ReportJobs(s.reports, store, on_queued=mail)
        self._worker("reports", jobs.step, s.reports.check_interval)
        dispatcher.on_submitted = w_receipts.wake
        on_inbound = w_inbound.wake if inbound is None else _both(w_inbound.wake, inbound)
        return Wakeups(mail, w_dispatch.wake, w_receipts.wake, on_inbound)

    def _pacer(self, store: Store) -> Pacer:
        """This process's one pacer, for every door that takes new messages (SMTP, the
        SMPP server, the API)."""
        s = self.settings.server
        load = self._load(store)
        if s.in_flow_delay > 0 and load.commit_mark.relative:  # learn between messages too
            usual = UsualWaits(load.commit_mark, store.waits)
            self._worker("commit-waits", usual.step, 1.0)
        return Pacer(
            s.in_flow_busy,
            s.in_flow_delay,
            self.metrics,
            load=load,
            clocks=partial(read_clocks, store.waits),
            owner=self._owner_load(),
        )

    def _load(self, store: Store) -> CpuLoad:
        """This process's load: its CPU, its loop's, its group commits' waits."""
        slow = self.settings.server.in_flow_commit_wait
        if slow is None and store.engine.dialect.name == "sqlite":
            slow = SQLITE_COMMIT_WAIT  # a local disk: a commit is a millisecond or two
        # PostgreSQL, unset: relative to the usual wait (the network's, a replica's)
        return CpuLoad(usable_cpus(), slow_commit=CommitMark(slow))

    def _owner_load(self) -> SharedLoad | None:
        """For another process than the first: the first's load, to pace new messages by."""
        return None if self.share is None or self.share.owner else self.share.load

    def _shared_wake(self, what: bytes) -> Callable[[], None] | None:
        """The first of several processes: a wake-up for the others' workers, else None."""
        if self.share is None or self.share.count < 2:
            return None
        return _poster(self.share.wake, what)

    async def _start_intake(
        self, store: Store, backpressure: Backpressure, wake: Wakeups
    ) -> tuple[str, int]:
        s = self.settings
        self.handler = IntakeHandler(
            s.smtp,
            s.defaults.model_dump(),
            store,
            on_accepted=wake.dispatch,
            wake_before_commit=self._claims_join(),
            on_notice=wake.mail,
            backpressure=backpressure,
            pacer=self.pacer,
            alert_fallback=s.inbound.postmaster,
            reply_window=s.inbound.reply_window,
            metrics=self.metrics,
        )
        self._server, self._shared = await start_listener(
            s.smtp,
            self.handler,
            store,
            reuse_port=self.share is not None,
            certs=self.certs,
            counts=self.share.counts if self.share is not None else None,
        )
        sock = self._server.sockets[0].getsockname()
        share = self.share
        log.info(
            "SMTP intake listening on %s:%d for domains %s%s",
            sock[0],
            sock[1],
            ", ".join(s.smtp.domains),
            "" if share is None else f" (process {share.index + 1} of {share.count})",
        )
        return (sock[0], sock[1])

    async def _start_http(
        self, store: Store, backpressure: Backpressure, wake: Wakeups
    ) -> tuple[str, int] | None:
        """The HTTP listener: /healthz, /readyz (the checks below), /metrics, the REST API."""
        s = self.settings.http
        if not s.enabled:
            return None
        database = DatabaseCollector(store, s.scrape_timeout)
        self.registry.register(database)
        self.registry.register(SmppCollector(self.transports))
        ready = [
            checks.database(store),
            checks.smsc(self.transports),
            self._smtp_check(),
            checks.queues(backpressure),
        ]
        service = MessageService(
            store,
            self.settings.defaults.model_dump(),
            self.settings.smtp.domains,
            self.settings.smtp.max_recipients,
            self.settings.inbound.reply_window,
        )
        api = Api(service, self.metrics, backpressure, on_accepted=wake.dispatch, pacer=self.pacer)
        routes = [
            *health_routes(ready, s.check_timeout),
            metrics_route(self.registry, database),
            *api.routes(),
        ]
        if self.settings.portal.enabled:
            self.portal = Portal(
                store,
                self.settings.portal,
                https=s.tls_cert is not None,
                reports=self.settings.reports,
                defaults=self.settings.defaults.model_dump(),
            )
            routes += self.portal.routes()
        self.http = HttpServer(s, build_app(routes), certs=self.certs)
        host, port = await self.http.start()
        scheme = "https" if s.tls_cert else "http"
        log.info(
            "HTTP listening on %s://%s:%d (/healthz, /readyz, /metrics, /api/v1%s)",
            scheme,
            f"[{host}]" if ":" in host else host,
            port,
            ", /portal/" if self.settings.portal.enabled else "",
        )
        return (host, port)

    def _smtp_check(self) -> Check:
        """The SMTP listener is open; in a first process that accepts no SMTP (the others'
        listeners are watched by the parent: one that exits stops the bridge), only that
        the bridge is not stopping."""
        if self.share is None or self.share.smtp:
            return checks.smtp(lambda: self._server, lambda: self._stopped)

        async def probe() -> str | None:
            return "the bridge is stopping" if self._stopped else None

        return Check("smtp", probe)

    def _claims_join(self) -> bool:
        """Whether the dispatcher, woken as a message is queued for its commit, claims its
        orders in that same transaction (their group commits share a lane,
        `bridge.mt.lanes.ORDERS`). Else (the dispatcher in another process) it is woken
        once the message committed."""
        return self.dispatcher is not None

    def _prepare_database(self, engine: Engine) -> str:
        return prepare_database(self.settings, engine)

    def _worker(
        self,
        name: str,
        step: object,
        poll: float,
        *,
        more: Callable[[], bool] | None = None,
        settle: float = 0.0,
    ) -> Worker:
        worker = Worker(name, step, poll, more=more, settle=settle)  # type: ignore[arg-type]
        self.workers[name] = worker
        return worker

    async def stop(self, grace: float = 10.0, linger: float = 0.5) -> None:
        """Stop accepting, let in-flight mails finish, then stop workers, transports and store.

        While stopping, new sessions and new commands are answered `421 4.3.2`
        (for at least `linger` seconds); a mail whose DATA is being committed
        finishes first (for at most `grace` seconds). Calling it twice is harmless.
        """
        if self._stopped:
            return
        self._stopped = True
        loop = asyncio.get_running_loop()
        started = loop.time()
        if self._shared is not None:
            self._shared.stopping = True
        if self.handler is not None:
            await self.handler.drained(grace)
        if self._server is not None:
            await asyncio.sleep(max(0.0, linger - (loop.time() - started)))
            self._server.close()
        if self._shared is not None:
            release_listener(self._shared)
        if self.smpp_server is not None:  # its binds unbound after their answers
            await self.smpp_server.stop(grace)
        if self.http is not None:
            await self.http.stop()
        await self.certs.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.mailer is not None:  # the SMTP sessions it kept for the next notice
            await self.mailer.close()
        if self.pusher is not None:  # the receivers' connections it kept for the next push
            await self.pusher.close()
        if self.dispatcher is not None:  # running submits finish, or are recorded as unknown
            await self.dispatcher.stop(grace)
        for transport in self.transports.values():
            await transport.stop()
        if self.sandbox is not None:
            await self.sandbox.stop()
        if self.share is not None:
            asyncio.get_running_loop().remove_reader(self.share.wake.fileno())
        if self.store is not None:
            await self.store.close()
        log.info("stopped")


def prepare_database(settings: Settings, engine: Engine) -> str:
    """Check durability, migrate, create the demo tenant; returns the durability found."""
    durability = db.check_durability(engine)
    db.upgrade(engine, default_country=settings.defaults.default_country)
    if settings.demo and db.run_at_start_up(engine, ensure_demo):
        log.info("new database: created demo customer and user demo@example.com (demo = true)")
    demo_smpp = settings.demo and settings.smpp_server.enabled
    password = settings.smpp_server.demo_password
    if demo_smpp and db.run_at_start_up(engine, lambda c: ensure_demo_account(c, password)):
        log.info("created SMPP account demo for demo@example.com (loopback only)")
    if settings.demo and settings.http.enabled and settings.portal.enabled:
        portal_password = settings.portal.demo_password
        if db.run_at_start_up(engine, lambda c: ensure_demo_admin(c, portal_password)):
            log.info("created portal account admin for the demo customer")
    for name, warning in run_sync(engine, exposures):
        log.warning("customer %s %s", name, warning)
    return durability


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop `[server] event_loop` names (None: asyncio's own)."""
    if name != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:
        raise ConfigError(
            '[server] event_loop = "uvloop": uvloop is not installed; install it'
            " (pip install 'mailsms[uvloop]') or set event_loop = \"asyncio\""
        ) from None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run_forever(settings: Settings, share: Share | None = None) -> None:
    """Run the bridge (or this process's share of it) on the configured event loop."""
    with asyncio.Runner(loop_factory=loop_factory(settings.server.event_loop)) as runner:
        runner.run(run(settings, share))


def _receipts_rounds(conn: Connection, rounds: list[_Round]) -> list[Applied]:
    """The receipts steps queued for one group commit (one: there is one receipts worker)."""
    return [_receipts_round(conn, r) for r in rounds]


def _receipts_round(conn: Connection, r: _Round) -> Applied:
    """One receipts step: apply receipts, then (`sweep`, once a second) orphan receipts past
    the window and end orders past their deadline."""
    now = utcnow()
    steps = r.steps
    result = apply_receipts(
        conn, now, RECEIPTS_BATCH, r.window, r.hold, steps=steps, orphan=r.sweep
    )
    if not r.sweep or not (unconfirmed := finish_unconfirmed(conn, now, 200, steps=steps)).ids:
        return result
    return dataclasses.replace(
        result,
        finished_orders=(*result.finished_orders, *unconfirmed.ids),
        unconfirmed=len(unconfirmed.ids),
        notices=result.notices + unconfirmed.notices,
    )


async def run(settings: Settings, share: Share | None = None) -> None:
    """Run the bridge until SIGINT or SIGTERM."""
    bridge = Bridge(settings, share=share)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, bridge.reload)
    log.info("event loop: %s", type(loop).__module__.partition(".")[0])
    await bridge.start()
    # What the start loaded (modules, table metadata, templates, number metadata) lives as
    # long as the process: out of the collector's full passes, which walk every tracked
    # object and held the loop for ~100 ms at a time, mid-traffic (the latency's p99).
    gc.freeze()
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await bridge.stop()
